# Runs at install time (from an install(CODE) of WeftInstall.cmake): writes weft/_install.py into
# the copy of the Python package installed in PREFIX/share/weft/python, recording where this
# install put libweft.so.0 and weft-relay. `pip install PREFIX/share/weft/python` copies it into
# the environment, so that the package loads this prefix's library wherever pip puts it (and
# without LD_LIBRARY_PATH). Under DESTDIR the file goes below DESTDIR and names the final paths.
#
# Inputs: WEFT_PYTHON_DIR, WEFT_LIBDIR, WEFT_BINDIR (each relative to the prefix, or absolute).
function(_weft_full_path out dir)
  if(NOT IS_ABSOLUTE "${dir}")
    set(dir "${CMAKE_INSTALL_PREFIX}/${dir}")
  endif()
  set(${out} "${dir}" PARENT_SCOPE)
endfunction()
_weft_full_path(_weft_python_dir "${WEFT_PYTHON_DIR}")
_weft_full_path(_weft_lib_dir "${WEFT_LIBDIR}")
_weft_full_path(_weft_bin_dir "${WEFT_BINDIR}")
foreach(_weft_path IN ITEMS _weft_lib_dir _weft_bin_dir)
  # A Python string literal: a path with a quote or a backslash would need escaping.
  if("${${_weft_path}}" MATCHES "[\"\\\\]")
    message(FATAL_ERROR "weft: the install path ${${_weft_path}} holds a quote or a backslash")
  endif()
endforeach()
set(_weft_file "${_weft_python_dir}/weft/_install.py")
message(STATUS "Installing: $ENV{DESTDIR}${_weft_file}")
file(WRITE "$ENV{DESTDIR}${_weft_file}"
"\"\"\"Written by cmake --install: where that installation of Weft put the files this package uses
(read by _capi.installed_path; $WEFT_LIBRARY and $WEFT_RELAY override them).\"\"\"

LIBRARY = \"${_weft_lib_dir}/libweft.so.0\"
RELAY = \"${_weft_bin_dir}/weft-relay\"
")
list(APPEND CMAKE_INSTALL_MANIFEST_FILES "${_weft_file}")
unset(_weft_file)
unset(_weft_python_dir)
unset(_weft_lib_dir)
unset(_weft_bin_dir)
