# Runs at install time (from an install(CODE) of WeftInstall.cmake): writes weft-relay.service
# with the paths of this install's prefix, so that `cmake --install BUILD --prefix P` gives a unit
# that runs P/bin/weft-relay whatever prefix the build was configured with, and puts the relay's
# configuration file in place (/etc/weft/weft-relay.conf for the prefix /usr, P/etc/weft/... for
# others) unless one is there already: an operator's edits are never overwritten. Under DESTDIR
# the files go below DESTDIR and name the final paths.
#
# Inputs: WEFT_UNIT_TEMPLATE, WEFT_CONFIG_TEMPLATE, WEFT_SYSTEMD_UNIT_DIR, WEFT_BINDIR (relative
# or absolute).
set(_weft_prefix "${CMAKE_INSTALL_PREFIX}")
# `dir` as an absolute path: as it is, or under the install prefix.
function(_weft_full_path out dir)
  if(NOT IS_ABSOLUTE "${dir}")
    set(dir "${_weft_prefix}/${dir}")
  endif()
  set(${out} "${dir}" PARENT_SCOPE)
endfunction()
_weft_full_path(_weft_unit_dir "${WEFT_SYSTEMD_UNIT_DIR}")
_weft_full_path(_weft_bin_dir "${WEFT_BINDIR}")
set(WEFT_RELAY_EXEC "${_weft_bin_dir}/weft-relay")
set(WEFT_DOC_FULL_DIR "${_weft_prefix}/share/doc/weft")
if(_weft_prefix STREQUAL "/usr")
  set(_weft_sysconf "/etc")
else()
  set(_weft_sysconf "${_weft_prefix}/etc")
endif()
set(WEFT_RELAY_CONFIG "${_weft_sysconf}/weft/weft-relay.conf")
if(EXISTS "$ENV{DESTDIR}${WEFT_RELAY_CONFIG}")
  message(STATUS "Up-to-date (kept as it is): $ENV{DESTDIR}${WEFT_RELAY_CONFIG}")
else()
  # (file(INSTALL) puts DESTDIR in front of DESTINATION itself.)
  file(INSTALL "${WEFT_CONFIG_TEMPLATE}" DESTINATION "${_weft_sysconf}/weft"
       FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
endif()

set(_weft_unit "${_weft_unit_dir}/weft-relay.service")
message(STATUS "Installing: $ENV{DESTDIR}${_weft_unit}")
configure_file("${WEFT_UNIT_TEMPLATE}" "$ENV{DESTDIR}${_weft_unit}" @ONLY)
list(APPEND CMAKE_INSTALL_MANIFEST_FILES "${_weft_unit}")
unset(_weft_unit)
unset(_weft_unit_dir)
unset(_weft_bin_dir)
unset(_weft_sysconf)
unset(_weft_prefix)
