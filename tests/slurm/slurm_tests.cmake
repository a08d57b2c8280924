# SPDX-License-Identifier: MIT
# The seed demo under Slurm (label "slurm"): a one-node cluster of this machine's own daemons
# (slurm_cluster.sh: munged, slurmctld, slurmd; Debian's slurm-wlm and munge) is started before
# the tests and stopped after them; the demo runs as a job step of srun, with Slurm's PMIx
# starting the ranks (Debian's Open MPI has no PMI2 client), and as a batch job whose script
# calls mpirun inside the allocation. Included from examples/CMakeLists.txt where seed_demo is
# built with MPI; the tests exist where the Slurm and munge programs are installed.
set(mproc_slurm_programs srun sbatch squeue scancel scontrol sinfo slurmctld slurmd munged)
set(mproc_slurm_found ON)
foreach(program IN LISTS mproc_slurm_programs)
    find_program(MPROC_${program}_EXECUTABLE ${program} PATHS /usr/sbin /sbin)
    if(NOT MPROC_${program}_EXECUTABLE)
        set(mproc_slurm_found OFF)
        message(STATUS "mproc: no ${program}: no Slurm tests (scripts/setup.sh test installs them)")
        break()
    endif()
endforeach()

if(mproc_slurm_found)
    # The cluster's directory: under the build tree where its sockets' paths (this directory plus
    # up to about 50 bytes) fit in a Unix socket address (108 bytes), else a short one in /tmp,
    # which the cleanup removes. The logs and the batch job's output stay in the build tree.
    set(slurm_dir ${CMAKE_CURRENT_BINARY_DIR}/slurm_cluster)
    string(LENGTH "${slurm_dir}" slurm_dir_length)
    if(slurm_dir_length GREATER 56)
        string(MD5 slurm_dir_hash "${CMAKE_CURRENT_BINARY_DIR}")
        string(SUBSTRING "${slurm_dir_hash}" 0 12 slurm_dir_hash)
        set(slurm_dir /tmp/mproc-slurm-${slurm_dir_hash})
    endif()
    set(slurm_cluster ${PROJECT_SOURCE_DIR}/tests/slurm/slurm_cluster.sh)
    set(slurm_environment SLURM_CONF=${slurm_dir}/slurm.conf ${MPROC_MPI_TEST_ENVIRONMENT})

    add_test(NAME slurm_cluster_up
        COMMAND ${slurm_cluster} up ${slurm_dir} ${CMAKE_CURRENT_BINARY_DIR}/slurm_logs)
    set_tests_properties(slurm_cluster_up PROPERTIES TIMEOUT 60 LABELS "slurm;mpi"
        FIXTURES_SETUP slurm_cluster PASS_REGULAR_EXPRESSION "slurm_cluster: node [^ ]+ idle")

    # A job step of 3 tasks, MPI ranks through Slurm's PMIx server, no mpirun. --overcommit:
    # 3 ranks on fewer cores (rank 0 mostly waits).
    add_test(NAME seed_demo_slurm_srun
        COMMAND ${MPROC_srun_EXECUTABLE} -n 3 --overcommit --mpi=pmix --time=2
            $<TARGET_FILE:seed_demo> --pool mpi --workers 3 --tasks 6 --chunksize 2 --samples 1
            --iterations 100000)
    set_tests_properties(seed_demo_slurm_srun PROPERTIES TIMEOUT 120 LABELS "slurm;mpi"
        FIXTURES_REQUIRED slurm_cluster ENVIRONMENT "${slurm_environment}"
        PASS_REGULAR_EXPRESSION
        "Starting mproc::MpiPool test.*MPI rank 2 \\(host.*Speed-up: [0-9.]+x \\(bound: [1-3] = min\\(3 workers")

    # A batch job of 3 tasks whose script runs mpirun; sbatch --wait returns the job's status,
    # then its output file is printed.
    add_test(NAME seed_demo_slurm_sbatch_mpirun
        COMMAND ${slurm_cluster} batch ${slurm_dir}
            ${PROJECT_SOURCE_DIR}/tests/slurm/seed_demo_job.sh $<TARGET_FILE:seed_demo>)
    set_tests_properties(seed_demo_slurm_sbatch_mpirun PROPERTIES TIMEOUT 120
        LABELS "slurm;mpi" FIXTURES_REQUIRED slurm_cluster ENVIRONMENT "${slurm_environment}"
        PASS_REGULAR_EXPRESSION
        "job [0-9]+: 3 tasks on [^\n]*\n.*Starting mproc::MpiPool test.*MPI rank 2 \\(host.*Speed-up: [0-9.]+x \\(bound: [1-3] = min\\(3 workers")

    # Stops the daemons and fails if one is left or a port still answers.
    add_test(NAME slurm_cluster_down COMMAND ${slurm_cluster} down ${slurm_dir})
    set_tests_properties(slurm_cluster_down PROPERTIES TIMEOUT 60 LABELS "slurm;mpi"
        FIXTURES_CLEANUP slurm_cluster PASS_REGULAR_EXPRESSION "no daemon left")
endif()
