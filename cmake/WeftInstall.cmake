# Install rules: `cmake --install build [--prefix DIR]` puts in place
#   include/weft.h                      the C API
#   include/weft/...                    the C++ SDK and CRDT headers
#   lib/libweft.so.0 (+ links)          the C API library (the SDK linked in statically)
#   lib/libweft_{sdk,crdt,proto}.a      the C++ SDK as static libraries
#   lib/cmake/Weft/                     WeftConfig.cmake: find_package(Weft) gives Weft::weft (C)
#                                       and, when its dependencies are found, Weft::sdk (C++)
#   lib/pkgconfig/weft.pc               pkg-config for the C API
#   bin/weft-relay, bin/weft            the relay and the command-line tool
#   lib/systemd/system/weft-relay.service   the relay as a hardened system service, and
#   lib/sysusers.d/weft.conf            its system user (WEFT_SYSTEMD_UNIT_DIR and
#                                       WEFT_SYSUSERS_DIR move them)
#   etc/weft/weft-relay.conf            the relay's settings (/etc/weft/ for the prefix /usr;
#                                       an existing file is kept)
#   share/doc/weft/                     README.md and docs/
#   share/weft/python/                  the Python package, for `pip install` from there; its
#                                       weft/_install.py names this install's libweft.so.0
# Everything but the service unit and the Python package's record is relocatable: the files locate the prefix relative to
# themselves, while the unit names the relay by its absolute installed path (under DESTDIR
# staging too, it names the final one).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(WEFT_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/Weft)

install(TARGETS weft EXPORT WeftTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES ${PROJECT_SOURCE_DIR}/bindings/c/include/weft.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT WeftTargets NAMESPACE Weft:: DESTINATION ${WEFT_CMAKE_DIR})

# The C++ SDK: its static libraries and public headers (no Boost, SQLite or Cap'n Proto type
# appears in them; the libraries need SQLite, Cap'n Proto, libsodium and OpenSSL at link time).
install(TARGETS weft_sdk weft_crdt weft_proto ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/crdt/include/ ${PROJECT_SOURCE_DIR}/sdk/include/
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} FILES_MATCHING PATTERN "*.h")

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/WeftConfig.cmake.in
                              ${CMAKE_BINARY_DIR}/cmake/WeftConfig.cmake
                              INSTALL_DESTINATION ${WEFT_CMAKE_DIR}
                              PATH_VARS CMAKE_INSTALL_LIBDIR CMAKE_INSTALL_INCLUDEDIR)
# 0.x: a new minor version may break the API, so only the same minor version is compatible.
write_basic_package_version_file(${CMAKE_BINARY_DIR}/cmake/WeftConfigVersion.cmake
                                 VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/cmake/WeftConfig.cmake
              ${CMAKE_BINARY_DIR}/cmake/WeftConfigVersion.cmake
        DESTINATION ${WEFT_CMAKE_DIR})

# pkg-config, with the prefix found from the .pc file's own place.
file(RELATIVE_PATH WEFT_PC_UP /root/${CMAKE_INSTALL_LIBDIR}/pkgconfig /root)
configure_file(${PROJECT_SOURCE_DIR}/cmake/weft.pc.in ${CMAKE_BINARY_DIR}/cmake/weft.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/cmake/weft.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# The programs: weft-relay and the `weft` tool (both link the SDK statically).
install(TARGETS weft-relay weft-cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# The relay as a systemd service, and its system user. lib/systemd/system rather than
# CMAKE_INSTALL_LIBDIR, which is multiarch (lib/x86_64-linux-gnu) under /usr on Debian.
set(WEFT_SYSTEMD_UNIT_DIR lib/systemd/system CACHE STRING
    "Where weft-relay.service is installed (relative to the prefix, or absolute)")
set(WEFT_SYSUSERS_DIR lib/sysusers.d CACHE STRING
    "Where the sysusers.d file for the weft user is installed (relative or absolute)")
install(CODE "
  set(WEFT_UNIT_TEMPLATE \"${PROJECT_SOURCE_DIR}/packaging/systemd/weft-relay.service.in\")
  set(WEFT_CONFIG_TEMPLATE \"${PROJECT_SOURCE_DIR}/packaging/weft-relay.conf\")
  set(WEFT_SYSTEMD_UNIT_DIR \"${WEFT_SYSTEMD_UNIT_DIR}\")
  set(WEFT_BINDIR \"${CMAKE_INSTALL_BINDIR}\")
  include(\"${PROJECT_SOURCE_DIR}/cmake/WeftInstallUnit.cmake\")")
install(FILES ${PROJECT_SOURCE_DIR}/packaging/systemd/weft.sysusers
        DESTINATION ${WEFT_SYSUSERS_DIR} RENAME weft.conf)

# The documentation, for operators and developers who have only the installed files.
install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/weft)
install(FILES ${PROJECT_SOURCE_DIR}/packaging/weft-relay.conf
        DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/weft RENAME weft-relay.conf.example)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/docs/ DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/weft
        FILES_MATCHING PATTERN "*.md" PATTERN "screenshots" EXCLUDE)

# The Python package (bindings/python), installed with `pip install PREFIX/share/weft/python`:
# the package's sources, and weft/_install.py written at install time with the final paths of
# libweft.so.0 and weft-relay, so that the package finds this prefix's library (README, "Python").
set(WEFT_PYTHON_DIR ${CMAKE_INSTALL_DATAROOTDIR}/weft/python)
install(FILES ${PROJECT_SOURCE_DIR}/bindings/python/pyproject.toml DESTINATION ${WEFT_PYTHON_DIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/bindings/python/weft
                  ${PROJECT_SOURCE_DIR}/bindings/python/examples
        DESTINATION ${WEFT_PYTHON_DIR}
        FILES_MATCHING PATTERN "*.py" PATTERN "_install.py" EXCLUDE PATTERN "__pycache__" EXCLUDE)
install(CODE "
  set(WEFT_PYTHON_DIR \"${WEFT_PYTHON_DIR}\")
  set(WEFT_LIBDIR \"${CMAKE_INSTALL_LIBDIR}\")
  set(WEFT_BINDIR \"${CMAKE_INSTALL_BINDIR}\")
  include(\"${PROJECT_SOURCE_DIR}/cmake/WeftInstallPython.cmake\")")
