# Installs the already-built mproc into a private prefix, builds the consumer project against it
# with find_package(mproc), builds it again with add_subdirectory(), and runs both binaries; then
# builds a ThreadPool-only project against the prefix with cereal hidden.

function(run_step)
    execute_process(COMMAND ${ARGV} RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE out)
    if(NOT result EQUAL 0)
        message(FATAL_ERROR "step failed (${result}): ${ARGV}\n${out}")
    endif()
    set(step_output "${out}" PARENT_SCOPE)
endfunction()

function(expect_consumer_output binary)
    run_step(${binary})
    if(NOT step_output MATCHES "sum of squares 0..99 = 328350")
        message(FATAL_ERROR "consumer printed unexpected output:\n${step_output}")
    endif()
    message(STATUS "${binary}: ${step_output}")
    # Where mproc was built with MPI, the mproc::mpi component links too (run without mpirun:
    # MpiPool refuses with its message).
    if(MPROC_WITH_MPI)
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

# 2. add_subdirectory() of the source tree.
run_step(${CMAKE_COMMAND} -S "${CONSUMER_SOURCE_DIR}" -B "${WORK_DIR}/subdirectory"
    -DMPROC_SOURCE_DIR=${MPROC_SOURCE_DIR} -DCMAKE_CXX_COMPILER=${CMAKE_CXX_COMPILER})
run_step(${CMAKE_COMMAND} --build "${WORK_DIR}/subdirectory" -j 2)
expect_consumer_output("${WORK_DIR}/subdirectory/consumer")

# 3. A project that uses only ThreadPool, where cereal is not installed: CMake cannot find its
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
