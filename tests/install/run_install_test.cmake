# SPDX-License-Identifier: MIT
# Installs the already-built mproc into a private prefix and builds the consumer project against
# it with find_package(mproc) and with pkg-config; builds it again with add_subdirectory() and
# installs that build (which must hold the consumer and nothing of mproc); packs mproc with
# `cpack -G DEB`, unpacks the package and builds the consumer against it both ways; runs every
# binary. Then builds a ThreadPool-only project against the prefix with cereal hidden.

function(run_step)
    execute_process(COMMAND ${ARGV} RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE out)
    if(NOT result EQUAL 0)
        message(FATAL_ERROR "step failed (${result}): ${ARGV}\n${out}")
    endif()
    set(step_output "${out}" PARENT_SCOPE)
endfunction()

function(expect_consumer_output binary)
    run_step(${binary})
    if(NOT step_output MATCHES "mproc ${MPROC_VERSION}: sum of squares 0..99 = 328350")
        message(FATAL_ERROR "consumer printed unexpected output:\n${step_output}")
    endif()
    message(STATUS "${binary}: ${step_output}")
    # Where mproc was built with MPI, the mproc::mpi component links too (run without mpirun:
    # MpiPool refuses with its message); pkg-config's mproc.pc is mproc::mproc alone (ARGV1).
    if(MPROC_WITH_MPI AND NOT ARGV1 STREQUAL "WITHOUT_MPI")
        get_filename_component(build_dir "${binary}" DIRECTORY)
        run_step(${build_dir}/mpi_consumer)
        if(NOT step_output MATCHES "MpiPool refused: .*mpirun")
            message(FATAL_ERROR "mpi_consumer printed unexpected output:\n${step_output}")
        endif()
        message(STATUS "mpi_consumer: ${step_output}")
    endif()
endfunction()

file(REMOVE_RECURSE "${WORK_DIR}")
set(prefix "${WORK_DIR}/prefix")

# 1. find_package(mproc) against the installed tree.
run_step(${CMAKE_COMMAND} --install "${MPROC_BINARY_DIR}" --prefix "${prefix}")
if(NOT EXISTS "${prefix}/lib/cmake/mproc/mprocConfig.cmake"
   AND NOT EXISTS "${prefix}/lib64/cmake/mproc/mprocConfig.cmake")
    file(GLOB_RECURSE found "${prefix}/*mprocConfig.cmake")
    if(NOT found)
        message(FATAL_ERROR "install did not produce mprocConfig.cmake under ${prefix}")
    endif()
endif()
run_step(${CMAKE_COMMAND} -S "${CONSUMER_SOURCE_DIR}" -B "${WORK_DIR}/installed"
    -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_CXX_COMPILER=${CMAKE_CXX_COMPILER})
run_step(${CMAKE_COMMAND} --build "${WORK_DIR}/installed")
expect_consumer_output("${WORK_DIR}/installed/consumer")

# Builds the consumer's main.cpp with the flags `pkg-config --cflags --libs mproc` gives, where
# pkg-config looks in `pc_dir` only; runs it.
function(expect_pkg_config_consumer pc_dir name)
    set(ENV{PKG_CONFIG_PATH} "${pc_dir}")
    set(ENV{PKG_CONFIG_LIBDIR} "${pc_dir}")
    run_step(pkg-config --modversion mproc)
    if(NOT step_output MATCHES "^${MPROC_VERSION}")
        message(FATAL_ERROR "pkg-config reports mproc ${step_output}, not ${MPROC_VERSION}")
    endif()
    run_step(pkg-config --cflags --libs mproc)
    string(STRIP "${step_output}" flags)
    separate_arguments(flags UNIX_COMMAND "${flags}")
    run_step(${CMAKE_CXX_COMPILER} -std=c++20 "${CONSUMER_SOURCE_DIR}/main.cpp" ${flags}
        -o "${WORK_DIR}/${name}")
    expect_consumer_output("${WORK_DIR}/${name}" WITHOUT_MPI)
endfunction()

# 2. pkg-config against the installed tree.
file(GLOB_RECURSE pc_files "${prefix}/*/mproc.pc")
if(NOT pc_files)
    message(FATAL_ERROR "install did not produce mproc.pc under ${prefix}")
endif()
list(GET pc_files 0 pc_file)
get_filename_component(pc_dir "${pc_file}" DIRECTORY)
expect_pkg_config_consumer("${pc_dir}" pkg_config_consumer)

# 3. add_subdirectory() of the source tree, asking for mproc::mpi where this build has it; the
# consumer's own install holds its program and nothing of mproc.
run_step(${CMAKE_COMMAND} -S "${CONSUMER_SOURCE_DIR}" -B "${WORK_DIR}/subdirectory"
    -DMPROC_SOURCE_DIR=${MPROC_SOURCE_DIR} -DCMAKE_CXX_COMPILER=${CMAKE_CXX_COMPILER}
    -DMPROC_WITH_MPI=${MPROC_WITH_MPI})
run_step(${CMAKE_COMMAND} --build "${WORK_DIR}/subdirectory" -j 2)
expect_consumer_output("${WORK_DIR}/subdirectory/consumer")
run_step(${CMAKE_COMMAND} --install "${WORK_DIR}/subdirectory" --prefix "${WORK_DIR}/vendored")
file(GLOB_RECURSE vendored_files RELATIVE "${WORK_DIR}/vendored" "${WORK_DIR}/vendored/*")
if(NOT vendored_files STREQUAL "bin/consumer")
    message(FATAL_ERROR "a project that vendors mproc installed more than its own program: "
        "${vendored_files}")
endif()
# Vendored, mproc::mpi is built only when asked for.
run_step(${CMAKE_COMMAND} -S "${CONSUMER_SOURCE_DIR}" -B "${WORK_DIR}/subdirectory_default"
    -DMPROC_SOURCE_DIR=${MPROC_SOURCE_DIR} -DCMAKE_CXX_COMPILER=${CMAKE_CXX_COMPILER})
file(STRINGS "${WORK_DIR}/subdirectory_default/CMakeCache.txt" with_mpi REGEX "^MPROC_WITH_MPI:")
if(NOT with_mpi STREQUAL "MPROC_WITH_MPI:BOOL=OFF")
    message(FATAL_ERROR "vendored mproc builds mproc::mpi unasked: ${with_mpi}")
endif()

# 4. The Debian package: its name, version and dependencies, then unpacked into a private root
# (dpkg-deb -x, no root rights needed) and consumed with find_package and with pkg-config.
run_step(cpack -G DEB -B "${WORK_DIR}/deb" --config "${MPROC_BINARY_DIR}/CPackConfig.cmake")
file(GLOB debs "${WORK_DIR}/deb/libmproc-dev_${MPROC_VERSION}_*.deb")
if(NOT debs)
    message(FATAL_ERROR "cpack made no libmproc-dev_${MPROC_VERSION}_*.deb in ${WORK_DIR}/deb")
endif()
list(GET debs 0 deb)
run_step(dpkg-deb --field "${deb}" Package Version Depends)
if(NOT step_output MATCHES "Package: libmproc-dev" OR NOT step_output MATCHES "libcereal-dev")
    message(FATAL_ERROR "unexpected package fields:\n${step_output}")
endif()
message(STATUS "${deb}:\n${step_output}")
run_step(dpkg-deb -x "${deb}" "${WORK_DIR}/deb_root")
run_step(${CMAKE_COMMAND} -S "${CONSUMER_SOURCE_DIR}" -B "${WORK_DIR}/deb_cmake"
    -DCMAKE_PREFIX_PATH=${WORK_DIR}/deb_root/usr -DCMAKE_CXX_COMPILER=${CMAKE_CXX_COMPILER})
run_step(${CMAKE_COMMAND} --build "${WORK_DIR}/deb_cmake")
expect_consumer_output("${WORK_DIR}/deb_cmake/consumer")
file(GLOB_RECURSE deb_pc_files "${WORK_DIR}/deb_root/usr/*/mproc.pc")
if(NOT deb_pc_files)
    message(FATAL_ERROR "the package holds no mproc.pc")
endif()
list(GET deb_pc_files 0 deb_pc_file)
get_filename_component(deb_pc_dir "${deb_pc_file}" DIRECTORY)
expect_pkg_config_consumer("${deb_pc_dir}" deb_pkg_config_consumer)

# 5. A project that uses only ThreadPool, where cereal is not installed: CMake cannot find its
# package, and every cereal header the compiler could reach fails the build if read.
set(no_cereal "${WORK_DIR}/no_cereal")
file(GLOB_RECURSE cereal_headers RELATIVE /usr/include /usr/include/cereal/*)
if(NOT cereal_headers)
    message(FATAL_ERROR "cereal's headers are not in /usr/include/cereal: nothing to hide")
endif()
foreach(header IN LISTS cereal_headers)
    file(WRITE "${no_cereal}/${header}" "#error \"a ThreadPool-only build read ${header}\"\n")
endforeach()
run_step(${CMAKE_COMMAND} -S "${THREAD_CONSUMER_SOURCE_DIR}" -B "${WORK_DIR}/thread_only"
    -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_CXX_COMPILER=${CMAKE_CXX_COMPILER}
    -DCMAKE_DISABLE_FIND_PACKAGE_cereal=TRUE "-DCMAKE_CXX_FLAGS=-I${no_cereal}")
run_step(${CMAKE_COMMAND} --build "${WORK_DIR}/thread_only")
run_step("${WORK_DIR}/thread_only/thread_consumer")
if(NOT step_output MATCHES "sum of squares 0..99 = 328350, imap 14, apply 42")
    message(FATAL_ERROR "thread_consumer printed unexpected output:\n${step_output}")
endif()
message(STATUS "thread_consumer (no cereal): ${step_output}")
