# flowrl -- run ./configure first (it writes config.mk and config.h).
#   make            library (build/libflowrl.a, .so) and CLI (build/flowrl)
#   make check      every test (Check runner, then python/'s pytest suite; the exit code is the verdict;
#                   with Open MPI, tests/check_mpi.sh: mpirun -n 1, 2, 3 against runs without MPI)
#   make check-asan the same under AddressSanitizer + UBSan (in build-asan/)
#   make fuzz       libFuzzer on every reader of outside data, FUZZ_SECONDS each (default 60)
#   make accuracy   the dense transcendental sweep against MPFR (docs/determinism.md)
#   make demo       the main job: shapes base + Flow-GRPO + before/after table (tools/demo.sh);
#                   make demo ALGO=awm runs AWM instead
#   make demo-control  expert demonstrations -> BC -> RL on nav2d's harder setting, success before and
#                   after, trajectory PNGs (tools/demo_control.sh, a few minutes; ALGO=dppo|fpo|...)
#   make bench      build the benchmarks; make benchmarks runs them into BENCHMARKS.md
#   make bench-profile / bench-gates  where an epoch's time goes; shapes-s, shapes-m, AWM against their GEMM-only bound (bench/bench_profile.py)
#   make bench-mpi  epoch time against mpirun -n R (bench/bench_mpi.py; its own section of BENCHMARKS.md)
#   make bench-family the Flow-GRPO family on gmm2d halfplane, 3 seeds (bench/bench_family.py, ~10 min)
#   make bench-prefs  Diffusion-DPO, Flow-DPO and Diffusion-DRO on gmm2d halfplane from preference
#                   files, 3 seeds (bench/bench_prefs.py, ~20 min; --only a,b measures some rows)
#   make bench-gfn    GFlowNets on HyperGrid 2D H8: exact L1 per loss, 3 seeds (bench/bench_gfn.py)
#   make bench-gfn-ext  OP-GFN and local search vs TB on HyperGrid 4D H8, 3 seeds (bench/bench_gfn_ext.py)
#   make bench-gfn-guided  guided TB and the ssr policy vs TB and sa on HyperGrid 4D H8, 3 seeds (bench/bench_gfn_guided.py)
#   make bench-gfn-oc   outcome-conditioned GFlowNets on HyperGrid 2D H8: goal rate, fine-tuned vs scratch, 3 seeds (bench/bench_gfn_oc.py)
#   make bench-gfn-diffusion  diffusion samplers as GFlowNets on 25GMM, Funnel, Manywell: delta log Z against its tolerance, 3 seeds (bench/bench_gfn_diffusion.py)
#   make bench-branch BranchGRPO vs DanceGRPO iteration time at equal leaves (bench/bench_branch.py)
#   make bench-control every control algorithm (flowrl algos --json env_kind control) from BC on nav2d's
#                   harder setting and on pendulum, 3 seeds (bench/bench_control.py; QUICK=1 small
#                   budgets; its own section of BENCHMARKS.md)
#   make bench-algos the bake-off: every algorithm at the same budget of model evaluations, 3 seeds
#                   (bench/bench_algos.py, ~30 min on 2 cores; its own section of BENCHMARKS.md)
#   make bench-heldout  held-out transfer attempts on shapes, one seed each (bench/bench_heldout.py, ~40 min)
#   make bench-eps-base the epsilon base on shapes against the flow base at equal pretraining time, 3 seeds,
#                   and why it falls behind (bench/bench_eps_base.py, ~15 min; its own section of BENCHMARKS.md)
#   make bench-dit-base the shapes-dit-s base against the MLP base at equal (quiet) pretraining wall-clock,
#                   3 seeds (bench/bench_dit_base.py; its own section of BENCHMARKS.md)
#   make bench-dit-lora Flow-GRPO and AWM --lora-rank 8 on that DiT base against issue 20's bar, the
#                   verdict rows' seeds one run at a time (bench/bench_dit_lora.py, ~2 h; every run stored
#                   in bench/results/dit_lora.json; DIT_LORA_ARGS="--rows fg-best --seeds 1" runs some;
#                   bench/bench_dit_lora.py --from-results rewrites its section from the file alone)
#   make fault-trial issue 14's fault trial (tools/fault_trial.sh, a few minutes; not in check)
#   make gpu-bundle the GPU check's bundle (gpu-bundle/: flowrl, its libraries, tools/gpu_check.sh;
#                   DEVELOPERS.md says how to run it on a lent GPU machine)
ifeq ($(wildcard config.mk),)
$(error config.mk not found: run ./configure (or ./configure --install-deps) first)
endif
include config.mk

# ---- jobs: `make`, `make all`, `make check` and `make check-asan` run one job per CPU unless -j
# is given on the command line (which wins); other goals (benchmarks, demos) keep make's default
# of one job, so nothing they time runs beside something else.
ifneq ($(filter-out all check check-asan,$(or $(MAKECMDGOALS),all)),)
else ifeq ($(filter -j%,$(MAKEFLAGS)),)
MAKEFLAGS += -j$(shell nproc 2>/dev/null || echo 2)
endif
ifneq ($(filter check check-asan,$(MAKECMDGOALS)),)
MAKEFLAGS += -Oline
endif
# ---- end of the jobs block

BUILD ?= build
SAN ?= 0

# The determinism contract's flags (docs/design.md §1, docs/algorithms/numerics.md §2.1): no FMA
# contraction, no fast-math, ISO C (not the GNU dialect, which contracts by default).
# ---- build record and contract flags (issue 16) --------------------------------------------------
# They come last, after the user's CFLAGS, so `CFLAGS=-ffp-contract=fast` or `-ffast-math` cannot
# override them (fr_fp_selftest checks the result at run time). -fexcess-precision=standard is
# gcc's (clang ignores it with a warning per file): both compilers evaluate float in float on
# SSE2 and AArch64 (FLT_EVAL_METHOD 0), where the contract needs nothing more.
CC_MACROS := $(shell $(CC) -dM -E -x c /dev/null 2>/dev/null | grep -E '__clang__|__aarch64__ |__GNUC__ ')
CC_IS_CLANG := $(if $(findstring __clang__,$(CC_MACROS)),1,0)
FP_FLAGS = -ffp-contract=off -fno-fast-math $(if $(filter 0,$(CC_IS_CLANG)),-fexcess-precision=standard)
WARN = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wno-unused-parameter
OPT ?= -O2
CFLAGS_ALL = -std=c11 $(OPT) -g $(WARN) -fPIC -D_GNU_SOURCE \
	-Iinclude -I. $(CFG_CFLAGS) $(CFLAGS) $(FP_FLAGS)
# ---- end of the build record block
LDLIBS_ALL = $(CFG_LIBS) -lm -lpthread $(LDLIBS)
# ---- MPI (issue 17; core/dist.c): only dist.c sees mpi.h; HAVE_MPI=0 on the command line (make
# gpu-bundle) builds the one-rank dist.c
HAVE_MPI ?= 0
CFLAGS_ALL += -DFR_HAVE_MPI=$(HAVE_MPI)
ifeq ($(HAVE_MPI),1)
LDLIBS_ALL += $(MPI_LIBS)
endif
# ---- end of the MPI block
# ---- NCCL (issue 17; gpu/cuda_nccl.cu): nccl.h's directory for the one source that includes it
$(BUILD)/obj/gpu/cuda_nccl.cu.o: NVCCFLAGS += $(NCCL_CFLAGS)
# ---- end of the NCCL block
ifeq ($(SAN),1)
SANFLAGS = -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
CFLAGS_ALL += $(SANFLAGS) -O1
LDFLAGS += $(SANFLAGS)
endif
# nvcc (gpu/, tests/cuda/): the same contract on the device -- no FMA contraction, IEEE division
# and square root, denormals kept -- and one -arch (config.mk CUDA_ARCH: machine code for it,
# PTX for newer devices), so nvcc's share of `make check` stays small.
CUDA_ARCH ?= sm_90
CUDA_LIBDIR ?= $(patsubst %/bin/,%,$(dir $(NVCC)))/lib64
NVCCFLAGS = --fmad=false -prec-div=true -prec-sqrt=true -ftz=false -std=c++17 -arch=$(CUDA_ARCH) -O2 \
	-Xcompiler -fPIC,-ffp-contract=off,-Wall,-Wextra,-Wno-unused-parameter -Iinclude -I.

LIB_SRC := $(wildcard core/*.c core/algo/*.c ref/*.c opt/*.c emu/*.c data/*.c)
CLI_SRC := $(wildcard cli/*.c)
TEST_SRC := $(wildcard tests/*.c)
CU_SRC := $(if $(filter 1,$(HAVE_CUDA)),$(wildcard gpu/*.cu),)

LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o) $(CU_SRC:%.cu=$(BUILD)/obj/%.cu.o)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/obj/%.o)
# The CUDA runtime is linked statically, so flowrl needs only the driver (libcuda.so.1) on a GPU
# machine; cuBLAS (--fast on cuda) is loaded at run time (gpu/cuda_fast.cu). nvcc's launch stubs
# guard their function-local statics: libstdc++.
ifneq ($(CU_SRC),)
LDLIBS_ALL += -L$(CUDA_LIBDIR) -lcudart_static -ldl -lrt -lstdc++
endif

LIB_A := $(BUILD)/libflowrl.a
LIB_SO := $(BUILD)/libflowrl.so
CLI := $(BUILD)/flowrl
TEST_BIN := $(BUILD)/check_flowrl

.PHONY: all demo benchmarks bench-algos bench-peers bench-peers-dit bench-heldout check golden-check check-asan fuzz accuracy cuda-selfcheck bench clean install fault-trial \
	gpu-bundle
all: $(LIB_A) $(LIB_SO) $(CLI)

# ---- flags stamp (issue 16): every object depends on $(BUILD)/flags, rewritten only when the
# compiler or its flags change, so `make OPT=-O3` or new CFLAGS rebuild everything (never a mix).
FLAGS_STAMP := $(BUILD)/flags
FLAGS_LINE = $(CC) $(CFLAGS_ALL) | $(LDFLAGS) | $(LDLIBS_ALL)
ifneq ($(file < $(FLAGS_STAMP)),$(FLAGS_LINE))
$(shell mkdir -p $(BUILD))
$(file > $(FLAGS_STAMP),$(FLAGS_LINE))
endif

# core/buildinfo.c alone with these flags (tests/check_build.sh: the record, the contract
# flags after the user's CFLAGS, the rebuild when flags change).
$(BUILD)/build_probe: $(BUILD)/obj/tests/probe/build_probe.o $(BUILD)/obj/core/buildinfo.o $(BUILD)/obj/core/status.o
	$(CC) $(LDFLAGS) -o $@ $^ -lm

# aarch64 gcc 12.2 crashes (ICE in vect_transform_reduction) vectorising the fmax reductions of
# these tests' gradient checks (tests/test_objectives.c test_dmean_dv, tests/test_awm.c, tests/test_rgrad.c): gcc on
# aarch64 compiles them unvectorised (test code only; the library is untouched).
ifeq ($(CC_IS_CLANG)$(findstring __aarch64__,$(CC_MACROS)),0__aarch64__)
$(BUILD)/obj/tests/test_objectives.o $(BUILD)/obj/tests/test_awm.o $(BUILD)/obj/tests/test_rgrad.o: CFLAGS_ALL += -fno-tree-vectorize
endif

# make check's build legs: the record, the flags and the install (tests/check_build.sh,
# tests/check_install.sh), and the aarch64 (gcc, qemu-aarch64) and clang builds
# (tests/check_cross.sh, in $(BUILD)/cross/; a leg whose tools are missing says SKIP). Under SAN=1
# the program check_install links against the installed (sanitized) library gets the sanitizers too.
BUILD_CHECKS = CC="$(CC)" MAKE="$(MAKE)" sh tests/check_build.sh $(BUILD)/probe && \
	CC="$(CC) $(SANFLAGS)" MAKE="$(MAKE)" sh tests/check_install.sh && \
	$(if $(filter 1,$(SAN)),echo "check_cross: not under SAN=1 (make check runs it)",sh tests/check_cross.sh $(CLI) $(BUILD))
# ---- end of the flags stamp block

$(BUILD)/obj/%.o: %.c config.mk config.h $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

# opt/'s SIMD paths sit under #if FR_OPT_X86 / FR_OPT_NEON (opt/opt_simd.h): a file that forgets the
# header compiles them out without a word (opt_traj_rows.c did until 2026-12-07); -Wundef says so.
$(BUILD)/obj/opt/%.o: CFLAGS_ALL += -Wundef

$(BUILD)/obj/%.cu.o: %.cu config.mk config.h
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -MMD -MP -MF $(@:.o=.d) -c $< -o $@

$(BUILD)/obj/core/dist.o: CFLAGS_ALL += $(if $(filter 1,$(HAVE_MPI)),$(MPI_CFLAGS))

# buildinfo reports the compiler flags as they were used (all but -I, -D and -W: the user's CFLAGS
# and the contract's included; the compiler, its version and the target come from its macros).
BUILD_RECORD_FLAGS := $(strip $(filter-out -I% -D% -W%,$(CFLAGS_ALL)))
$(BUILD)/obj/core/buildinfo.o: CFLAGS_ALL += -DFR_BUILD_FLAGS='"$(subst ",,$(BUILD_RECORD_FLAGS))"'

$(LIB_A): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

# ---- C API shared library (issue 19; include/flowrl/capi.h, docs/python.md) ----------------------
# libflowrl.so.<FLOWRL_API_VERSION> with that SONAME; libflowrl.so is a link to it. It exports the stable
# C API (flowrl_*, include/flowrl/capi.h) only: core/libflowrl.map hides the internal fr_* functions,
# which libflowrl.a keeps for the CLI and the tests.
API_MAJOR := $(shell sed -n 's/^\#define FLOWRL_API_VERSION \([0-9][0-9]*\).*/\1/p' include/flowrl/capi.h)
LIB_SONAME := libflowrl.so.$(API_MAJOR)
$(BUILD)/$(LIB_SONAME): $(LIB_OBJ) core/libflowrl.map
	$(CC) -shared -Wl,-soname,$(LIB_SONAME) -Wl,--version-script=core/libflowrl.map $(LDFLAGS) -o $@ $(filter %.o,$^) $(LDLIBS_ALL)

$(LIB_SO): $(BUILD)/$(LIB_SONAME)
	ln -sf $(LIB_SONAME) $@
# ---- end of the C API block -------------------------------------------------------------------

$(CLI): $(CLI_OBJ) $(LIB_A)
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(LIB_A) $(LDLIBS_ALL)

$(TEST_BIN): $(TEST_OBJ) $(LIB_A)
	$(CC) $(LDFLAGS) -o $@ $(TEST_OBJ) $(LIB_A) $(LDLIBS_ALL) $(TEST_LIBS)

# nvcc present: the shared FR_HOSTDEV headers must compile for the device (--fmad=false);
# on a GPU machine `make cuda-selfcheck` runs the device-vs-host bit comparison.
CUDA_SELFCHECK := $(if $(filter 1,$(HAVE_CUDA)),$(BUILD)/cuda_selfcheck,)
# Every header with FR_HOSTDEV functions must be included (and its functions called) there.
$(BUILD)/cuda_selfcheck: tests/cuda/hostdev_selfcheck.cu $(wildcard include/flowrl/*.h) config.h
	@mkdir -p $(dir $@)
	@for h in $$(grep -l FR_HOSTDEV include/flowrl/*.h); do \
		grep -q "#include \"flowrl/$${h##*/}\"" $< || \
		{ echo "$<: does not include $$h, which has FR_HOSTDEV functions" >&2; exit 1; }; done
	$(NVCC) $(NVCCFLAGS) $< -o $@

cuda-selfcheck: $(BUILD)/cuda_selfcheck
	$(BUILD)/cuda_selfcheck

# The Check runner prints its summary line ("100%: Checks: N, Failures: 0, Errors: 0")
# and exits non-zero on any failure. FLOWRL_BIN lets the CLI tests run the built binary.
# The golden suite (golden/README.md) against every backend built in: bitwise for ref,
# opt (any thread count) and cuda-emu (the CUDA kernels in guarded device memory), within
# the documented tolerance for opt --fast.
GOLDEN_CHECKS = $(CLI) golden check --backend ref && \
	$(CLI) golden check --backend opt --threads 3 && \
	$(CLI) golden check --backend cuda-emu && \
	FLOWRL_EMU_ORDER=reverse $(CLI) golden check --backend cuda-emu \
	$(if $(filter 1,$(HAVE_OPENBLAS) $(HAVE_ONEDNN)),&& $(CLI) golden check --backend opt --fast --threads 2)

# check builds the benchmarks too (without running them), so an API change cannot leave them broken.
# Its legs are independent targets, so make runs them side by side (make check uses one job per
# CPU unless -j is given: see the jobs block at the top); each command's output is printed whole
# when it ends (-Oline), and the longest leg (the Check runner) starts first.
CHECK_DEPS := $(TEST_BIN) $(CLI) $(CUDA_SELFCHECK) bench
CHECK_LEGS := check-unit check-build check-golden check-mpi check-fuzz check-static check-python
.PHONY: $(CHECK_LEGS)
check: $(CHECK_LEGS)
	@echo "make check: all $(words $(CHECK_LEGS)) legs passed ($(CHECK_LEGS))"
$(CHECK_LEGS): $(CHECK_DEPS)
check-fuzz: $(if $(filter 1,$(HAVE_LIBFUZZER)),fuzz-build)
# The Check runner's timeouts catch hangs; beside the other legs a test runs up to ~2x slower than
# alone (suite algos' longest tests take a few minutes alone), so they are tripled here.
check-unit:
	CK_TIMEOUT_MULTIPLIER=$${CK_TIMEOUT_MULTIPLIER:-3} FLOWRL_BIN=$(abspath $(CLI)) FLOWRL_SRC=$(CURDIR) $(TEST_BIN)
check-build:
	$(BUILD_CHECKS)
check-golden:
	$(GOLDEN_CHECKS)
check-mpi:
	$(if $(filter 1,$(HAVE_MPI)),sh tests/check_mpi.sh $(CLI) $(MPIRUN),@echo "check_mpi: skipped, ./configure found no MPI")
check-fuzz:
	$(MAKE) --no-print-directory fuzz-smoke
check-static:
	sh tests/check_suites.sh
	python3 tests/check_doc_refs.py
	python3 tests/check_doc_refs.py --self-test
	python3 tools/respec.py --self-test
check-python:
	$(MAKE) --no-print-directory python-check

# ---- Python package (issue 19; python/, docs/python.md) ------------------------------------------
# make check installs python/ (flowrl_verify) into a venv with --system-site-packages (Debian's
# numpy, pytest and torch; no network) and runs its pytest suite against build/libflowrl.so.
PYTHON ?= /usr/bin/python3
PYENV := $(BUILD)/pyenv
PY_SRC := python/pyproject.toml python/setup.py $(wildcard python/flowrl_verify/*.py)
$(PYENV)/installed: $(PY_SRC)
	rm -rf $(PYENV) && $(PYTHON) -m venv --system-site-packages $(PYENV)
	$(PYENV)/bin/python -m pip install -q --no-build-isolation --no-deps --no-index ./python
	touch $@

# The torchgfn cross-check (python/tests/test_torchgfn.py, docs/algorithms/gfn.md §8): the pinned
# wheels that ./configure --install-deps downloaded into deps/wheels, installed without the network.
GFN_REQ := python/tests/requirements-torchgfn.txt
$(PYENV)/torchgfn: $(PYENV)/installed $(GFN_REQ)
	@ls deps/wheels/torchgfn-*.whl >/dev/null 2>&1 || { echo "make: the torchgfn cross-check needs its wheels in deps/wheels: run ./configure --install-deps" >&2; exit 1; }
	$(PYENV)/bin/python -m pip install -q --no-index --no-deps --find-links deps/wheels --require-hashes -r $(GFN_REQ)
	touch $@

.PHONY: python-check
ifeq ($(SAN),1)
python-check:
	@echo "python-check: not under SAN=1 (python cannot load the sanitized library); make check runs it"
else
python-check: $(LIB_SO) $(CLI) $(PYENV)/installed $(PYENV)/torchgfn
	cd python/tests && FLOWRL_LIB=$(abspath $(LIB_SO)) FLOWRL_SRC=$(CURDIR) FLOWRL_BIN=$(abspath $(CLI)) FLOWRL_REQUIRE_TORCH=1 \
		$(abspath $(PYENV))/bin/python -m pytest -q -p no:cacheprovider .
endif
# ---- end of the Python block ------------------------------------------------------------------

golden-check: $(CLI)
	$(GOLDEN_CHECKS)

# Benchmarks (bench/, results in BENCHMARKS.md): never part of make check.
# bench_cuda_gemm (canonical cuda GEMM vs cuBLAS) needs the cuda backend: built with it only.
bench: $(BUILD)/bench_gemm $(BUILD)/bench_model $(BUILD)/bench_fast $(BUILD)/bench_epoch $(BUILD)/bench_pretrain $(BUILD)/bench_profile \
	$(if $(CU_SRC),$(BUILD)/bench_cuda_gemm)
$(BUILD)/bench_%: bench/bench_%.c $(LIB_A)
	$(CC) $(CFLAGS_ALL) $(LDFLAGS) -o $@ $< $(LIB_A) $(LDLIBS_ALL)

# Runs every benchmark and rewrites BENCHMARKS.md from the measured numbers.
benchmarks: bench
	BUILD=$(BUILD) bench/run.sh

# The bake-off (issue 10): tunes and runs every registered algorithm on shapes and gmm2d at one
# budget of model evaluations; rewrites its section of BENCHMARKS.md and docs/img/bench_algos_*.svg.
bench-algos: all
	BUILD=$(BUILD) python3 bench/bench_algos.py

# Held-out transfer (issue 10, item 5): a one-seed screen of what might carry RL gains to the held-out
# prompts, and the mirror-shortcut measure (bench/bench_heldout.py; its own section of BENCHMARKS.md).
bench-heldout: all
	BUILD=$(BUILD) python3 bench/bench_heldout.py

# Issue 20: the DiT base against the MLP base at equal pretraining wall-clock (bench/bench_dit_base.py;
# its own section of BENCHMARKS.md).
.PHONY: bench-dit-base
bench-dit-base: all
	BUILD=$(BUILD) python3 bench/bench_dit_base.py

# Issue 20: Flow-GRPO and AWM with --lora-rank 8 on the DiT base of bench-dit-base against the bar (+5 points,
# interval excluding zero); stores each run in bench/results/dit_lora.json and writes the section from it all.
.PHONY: bench-dit-lora
bench-dit-lora: all
	BUILD=$(BUILD) python3 bench/bench_dit_lora.py --keep $(DIT_LORA_ARGS)

# BranchGRPO's iteration time against DanceGRPO at equal leaves (issue 11): its own section of
# BENCHMARKS.md (bench/bench_branch.py; about a minute).
.PHONY: bench-branch
bench-branch: all
	BUILD=$(BUILD) python3 bench/bench_branch.py

# The epsilon-prediction base on shapes against the flow base at equal pretraining time, and
# diagnostics of the gap; its own section of BENCHMARKS.md (bench/bench_eps_base.py; ~15 min).
.PHONY: bench-eps-base
bench-eps-base: all
	BUILD=$(BUILD) python3 bench/bench_eps_base.py

# Epoch time against the number of MPI processes (issue 17; R = 1, 2 here, a projection beyond):
# its own section of BENCHMARKS.md (bench/bench_mpi.py; about a minute).
.PHONY: bench-family
bench-family: all
	BUILD=$(BUILD) python3 bench/bench_family.py

.PHONY: bench-prefs
bench-prefs: all
	BUILD=$(BUILD) python3 bench/bench_prefs.py

.PHONY: bench-gfn
bench-gfn: all $(PYENV)/torchgfn
	BUILD=$(BUILD) PYENV=$(PYENV) python3 bench/bench_gfn.py

.PHONY: bench-gfn-ext
bench-gfn-ext: all
	BUILD=$(BUILD) python3 bench/bench_gfn_ext.py
.PHONY: bench-gfn-guided
bench-gfn-guided: all
	BUILD=$(BUILD) python3 bench/bench_gfn_guided.py
.PHONY: bench-gfn-oc
bench-gfn-oc: all
	BUILD=$(BUILD) python3 bench/bench_gfn_oc.py
.PHONY: bench-gfn-box
bench-gfn-box: all
	BUILD=$(BUILD) python3 bench/bench_gfn_box.py

.PHONY: bench-gfn-diffusion
bench-gfn-diffusion: all
	BUILD=$(BUILD) python3 bench/bench_gfn_diffusion.py

.PHONY: bench-control
# One Flow-GRPO epoch against the same epoch in PyTorch and JAX (issue 15): creates build/jaxenv (PyPI jax).
bench-peers: all
	BUILD=$(BUILD) $(PYTHON) bench/bench_peers.py

# The same for the DiT (issue 20): a shapes-dit-s pretraining step and a Flow-GRPO epoch with --lora-rank 8
# (bench/peers/dit_*.py; on make bench-dit-base's seed-0 base, or a one-step pretrain when it is missing).
bench-peers-dit: all
	BUILD=$(BUILD) $(PYTHON) bench/bench_peers.py --what dit-pretrain,dit-fg-lora $(if $(QUICK),--rounds 3 --epochs 2)

# Where a shapes-s Flow-GRPO epoch's time goes (bench/bench_profile.py: build/bench_profile at 1 core
# and 2 threads); bench-gates: shapes-s, shapes-m and AWM epochs against their GEMM-only bound
# (issue 15's gates' inputs, one invocation, about 30 s a round, 5 rounds). Each writes its section of BENCHMARKS.md.
.PHONY: bench-profile bench-gates
bench-profile: all $(BUILD)/bench_profile
	BUILD=$(BUILD) python3 bench/bench_profile.py
bench-gates: all $(BUILD)/bench_profile
	BUILD=$(BUILD) python3 bench/bench_profile.py --gates

bench-control: all
	BUILD=$(BUILD) python3 bench/bench_control.py $(if $(QUICK),--quick)

.PHONY: bench-mpi
bench-mpi: all
	BUILD=$(BUILD) MPIRUN=$(MPIRUN) python3 bench/bench_mpi.py

# The main job: pretrain (or reuse) a shapes base, run Flow-GRPO (ALGO=awm: AWM), print the
# before/after held-out accuracy table (tools/demo.sh; outputs under demo/).
ALGO ?= flow-grpo
demo: all
	BUILD=$(BUILD) ALGO=$(ALGO) tools/demo.sh

# GFlowNets on HyperGrid 2D H8: the exact L1 of each loss falling, with its plot (tools/demo_gfn.sh;
# about 2 minutes on 2 cores). build/plot_curves writes it through the project's SVG writer.
.PHONY: demo-gfn
demo-gfn: all $(BUILD)/plot_curves
	BUILD=$(BUILD) tools/demo_gfn.sh
$(BUILD)/plot_curves: tools/plot_curves.c $(LIB_A)
	$(CC) $(CFLAGS_ALL) $(LDFLAGS) -o $@ $< $(LIB_A) $(LDLIBS_ALL)
# expert demonstrations -> behaviour cloning -> RL on nav2d's harder setting (tools/demo_control.sh;
# ALGO=dppo|fpo|reinflow|ppo-gaussian, default fpo, else dppo, else ppo-gaussian)
.PHONY: demo-control
demo-control: all
	BUILD=$(BUILD) $(if $(filter-out file,$(origin ALGO)),ALGO=$(ALGO)) tools/demo_control.sh

# The GPU check's bundle (tools/gpu_bundle.sh; DEVELOPERS.md "The GPU check"): flowrl and the
# device checks built in build-bundle/ without OpenBLAS/oneDNN, the libraries a bare GPU machine
# lacks, the golden set and tools/gpu_check.sh, in gpu-bundle/ (<= 64 MiB).
gpu-bundle:
	MAKE=$(MAKE) tools/gpu_bundle.sh

check-asan:
	$(MAKE) BUILD=build-asan SAN=1 check

accuracy: $(TEST_BIN)
	FLOWRL_ACCURACY=dense $(TEST_BIN) detmath

# libFuzzer targets (tests/fuzz/fuzz_NAME.c), one per reader of outside data, linked against
# the whole library built by clang with ASan + UBSan (build/fuzz/obj), so a new dependency
# of a reader never breaks the fuzz build. Seeds: tests/corpus/NAME when it exists; what
# libFuzzer finds goes to build/fuzz/corpus-NAME, crashes to build/fuzz/crash-*.
# `make fuzz` runs each for FUZZ_SECONDS; `make check` builds every target and runs each
# for 3 s (fuzz-smoke), so none of them can rot.
FUZZ_SECONDS ?= 60
FUZZ_CC ?= clang
FUZZ_DIR := $(BUILD)/fuzz
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
# (the fuzz library has no gpu/ objects: the registry is built without cuda)
# FUZZ_OPT: -O0 with line tables compiles the ~280 files 3x faster than -O1 -g (make check builds
# them and runs each target 3 s); a long campaign runs more inputs a second with `make fuzz
# FUZZ_OPT=-O1` (after `rm -rf build/fuzz/obj`: the objects do not track these flags).
FUZZ_OPT ?= -O0 -gline-tables-only
FUZZ_CFLAGS = -std=c11 $(FUZZ_OPT) $(FUZZ_SAN) -ffp-contract=off -fno-fast-math $(WARN) -D_GNU_SOURCE \
	-DFR_HAVE_CUDA=0 -DFR_HAVE_MPI=0 -Iinclude -I. $(CFG_CFLAGS)
FUZZ_NAMES := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS := $(FUZZ_NAMES:%=$(FUZZ_DIR)/fuzz_%)
FUZZ_OBJ := $(LIB_SRC:%.c=$(FUZZ_DIR)/obj/%.o)
FUZZ_LIB := $(FUZZ_DIR)/libflowrl_fuzz.a

$(FUZZ_DIR)/obj/%.o: %.c config.mk config.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

$(FUZZ_LIB): $(FUZZ_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_LIB)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -MMD -MP $< $(FUZZ_LIB) -o $@ $(CFG_LIBS) -lm -lpthread

# run_fuzz NAME SECONDS
run_fuzz = mkdir -p $(FUZZ_DIR)/corpus-$(1) && $(FUZZ_DIR)/fuzz_$(1) -max_total_time=$(2) -max_len=8192 \
	-print_final_stats=0 -artifact_prefix=$(FUZZ_DIR)/crash-$(1)- $(FUZZ_DIR)/corpus-$(1) \
	$(wildcard tests/corpus/$(1)) 2>$(FUZZ_DIR)/fuzz_$(1).log || { tail -n 40 $(FUZZ_DIR)/fuzz_$(1).log; exit 1; }

.PHONY: fuzz-build fuzz-smoke
ifeq ($(HAVE_LIBFUZZER),1)
fuzz-build: $(FUZZ_BINS)
fuzz: $(FUZZ_BINS)
	$(foreach n,$(FUZZ_NAMES),$(call run_fuzz,$(n),$(FUZZ_SECONDS)) && echo "fuzz_$(n): $(FUZZ_SECONDS) s, no crash" &&) true
fuzz-smoke: $(FUZZ_BINS)
	@$(foreach n,$(FUZZ_NAMES),$(call run_fuzz,$(n),3) && echo "fuzz_$(n): 3 s, no crash" &&) true
else
fuzz fuzz-build:
	@echo "make fuzz: clang with libFuzzer not found by ./configure (./configure --install-deps installs it)" >&2; exit 1
fuzz-smoke:
	@echo "fuzz-smoke: skipped, clang with libFuzzer not found by ./configure" >&2
endif

# SIGKILLs, corruptions, concurrency, bad reward programs, a full disk, bad options, for
# every algorithm (docs/fault-trial.md); the table goes to stdout, the scratch dir is removed.
fault-trial: $(CLI)
	@d=$$(mktemp -d) && { tools/fault_trial.sh $$d; rc=$$?; rm -rf $$d; exit $$rc; }

# ---- install (issue 16): PREFIX from configure (--prefix), DESTDIR for staging. The binary finds
# the golden set in PREFIX/share/flowrl/golden (next to it); flowrl.pc: `pkg-config --cflags --libs
# flowrl` links the shared library (the C API, include/flowrl/capi.h), --static the whole library.
DESTDIR ?=
INST := $(DESTDIR)$(PREFIX)
install: all
	install -d $(INST)/lib/pkgconfig $(INST)/bin $(INST)/include/flowrl $(INST)/share/flowrl/golden
	install -m 644 $(LIB_A) $(BUILD)/$(LIB_SONAME) $(INST)/lib
	ln -sf $(LIB_SONAME) $(INST)/lib/libflowrl.so
	printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$${prefix}/lib' 'includedir=$${prefix}/include' '' \
		'Name: flowrl' 'Description: deterministic RL fine-tuning of flow-matching models' \
		'Version: $(shell cat VERSION)' 'Cflags: -I$${includedir}' 'Libs: -L$${libdir} -lflowrl' \
		'Libs.private: $(strip $(LDLIBS_ALL))' >$(INST)/lib/pkgconfig/flowrl.pc
	install -m 644 golden/* $(INST)/share/flowrl/golden
	install -m 755 $(CLI) $(INST)/bin
	install -m 644 include/flowrl/*.h $(INST)/include/flowrl
# ---- end of the install block

clean:
	rm -rf build build-asan

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(FUZZ_OBJ:.o=.d) $(FUZZ_BINS:=.d)
