# Install rules: headers, the libraries, a CMake package and a pkg-config file.
# Included from the top-level CMakeLists.txt when GROVE_INSTALL is on.
#
#   cmake --install build/release --prefix /opt/grove
#   find_package(grove CONFIG REQUIRED)   # CMAKE_PREFIX_PATH=/opt/grove
#   target_link_libraries(app PRIVATE grove::grove)   # or grove::core, grove::runner
#   c++ $(pkg-config --cflags grove) app.cpp $(pkg-config --libs grove)
#
# tests/install/ installs the build into a temporary prefix and builds a
# consumer both ways (test install.consumer).
include(CMakePackageConfigHelpers)

set(GROVE_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/grove
    CACHE STRING "Where grove-config.cmake is installed, relative to the prefix")
mark_as_advanced(GROVE_INSTALL_CMAKEDIR)

# The exported names match the in-tree ALIAS targets: grove::core, grove::io, grove::process, grove::runner, grove::grove.
set_target_properties(grove_core PROPERTIES EXPORT_NAME core)
set_target_properties(grove_io PROPERTIES EXPORT_NAME io)
set_target_properties(grove_process PROPERTIES EXPORT_NAME process)
set_target_properties(grove_runner PROPERTIES EXPORT_NAME runner)
set_target_properties(grove PROPERTIES EXPORT_NAME grove)

install(TARGETS grove_core grove_io grove_process grove_runner grove
        EXPORT grove-targets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# Every public header, detail/ included (the public headers include it).
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/grove
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        FILES_MATCHING PATTERN "*.hpp")

install(EXPORT grove-targets
        NAMESPACE grove::
        FILE grove-targets.cmake
        DESTINATION ${GROVE_INSTALL_CMAKEDIR})

configure_package_config_file(
  ${CMAKE_CURRENT_LIST_DIR}/grove-config.cmake.in
  ${PROJECT_BINARY_DIR}/cmake/grove-config.cmake
  INSTALL_DESTINATION ${GROVE_INSTALL_CMAKEDIR})
write_basic_package_version_file(
  ${PROJECT_BINARY_DIR}/cmake/grove-config-version.cmake
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/cmake/grove-config.cmake
              ${PROJECT_BINARY_DIR}/cmake/grove-config-version.cmake
        DESTINATION ${GROVE_INSTALL_CMAKEDIR})

# grove.pc is relocatable: its prefix is found from where the file lies
# (${pcfiledir}), so `cmake --install --prefix <anywhere>` gives a working file.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}" OR IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(GROVE_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
  set(GROVE_PC_LIBDIR "${CMAKE_INSTALL_FULL_LIBDIR}")
  set(GROVE_PC_INCLUDEDIR "${CMAKE_INSTALL_FULL_INCLUDEDIR}")
else()
  file(RELATIVE_PATH _grove_pc_up /_prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /_prefix)
  string(REGEX REPLACE "/$" "" _grove_pc_up "${_grove_pc_up}")
  set(GROVE_PC_PREFIX "\${pcfiledir}/${_grove_pc_up}")
  set(GROVE_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
  set(GROVE_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
# The usage requirements the CMake targets carry, spelled for pkg-config:
# -foptimize-sibling-calls is needed by g++ (docs/gcc12.md) and harmless for
# clang; a sanitizer build's libraries need the same -fsanitize flags.
set(GROVE_PC_CFLAGS "-std=c++20 -pthread -foptimize-sibling-calls")
set(GROVE_PC_LIBS "-pthread")
if(GROVE_SANITIZE)
  list(JOIN _san " " _grove_pc_san)
  string(APPEND GROVE_PC_CFLAGS " ${_grove_pc_san}")
  string(APPEND GROVE_PC_LIBS " ${_grove_pc_san}")
endif()
configure_file(${CMAKE_CURRENT_LIST_DIR}/grove.pc.in ${PROJECT_BINARY_DIR}/cmake/grove.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/cmake/grove.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
