# pmi-lab Makefile.
#   make              build ./pmi (prints what it found)
#   make test         install missing deps, build, run the test suite
#   make reproduce    install missing deps, build, run experiments/ at SCALE=small (default) or SCALE=paper
#   make plots        figures (PNG and SVG) of every results file of SCALE, under plots/
#   make deps         install the missing Debian packages (apt-get; root or sudo)
#   make install      ./pmi to $(DESTDIR)$(PREFIX)/bin, plot templates to share/pmi-lab/plots, docs to share/doc/pmi-lab,
#                     bash completion (pmi completion bash) to share/bash-completion/completions/pmi
#   make SAN=1        address+undefined sanitizer build in build-san/ (binary build-san/pmi; make test SAN=1 runs its suite)
#   make fuzz         libFuzzer on the config, IDX, CIFAR and safetensors readers, FUZZ_SECONDS (60) each (needs clang; tests/fuzz/; CI runs it)
#   make fuzz-results libFuzzer on the HDF5 results readers of report and plot, FUZZ_SECONDS (60); CI runs it
#                     (libhdf5 1.10 crashes on malformed files: the readers probe them in a child first, framework/probe.h)
# Overrides: TORCH_DIR=<dir with include/ and lib/> (a PyTorch install's torch/ folder or a
# libtorch archive); default is Debian's libtorch-dev under /usr. PREFIX=/usr/local, DESTDIR= for install.
# Before compiling, scripts/deps.sh --check names any missing library and the package to install.

CC      ?= cc
CXX     ?= c++
BUILD   ?= build
BUILD_BASE := $(BUILD)
SCALE   ?= small
OPT     ?= -O2
PREFIX  ?= /usr/local
DATADIR := $(PREFIX)/share/pmi-lab
PKGS_HDF5 := $(shell pkg-config --exists hdf5-serial 2>/dev/null && echo hdf5-serial || echo hdf5)
PKGS    := $(PKGS_HDF5) gsl inih zlib libcjson

CFLAGS   += -std=c11 -D_GNU_SOURCE $(OPT) -g -Wall -Wextra -Wno-unused-parameter -MMD -MP -Iframework
CXXFLAGS += -std=c++17 $(OPT) -fopenmp-simd -g -Wall -Wextra -Wno-unused-parameter -MMD -MP -Iframework
CFLAGS   += $(shell pkg-config --cflags $(PKGS) 2>/dev/null) -fopenmp
LDFLAGS  += -fopenmp
LDLIBS   += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm -lpthread

ifeq ($(SAN),1)
  CFLAGS   += -fsanitize=address,undefined -fno-omit-frame-pointer
  CXXFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer
  LDFLAGS  += -fsanitize=address,undefined
  BUILD    := $(BUILD)-san
  PMI      := $(BUILD)/pmi
else
  PMI      := pmi
endif

# ---- libtorch -------------------------------------------------------------------------
ifdef TORCH_DIR
  TORCH_INC   := $(TORCH_DIR)/include
  TORCH_LIB   := $(TORCH_DIR)/lib
  TORCH_CMAKE := $(TORCH_DIR)/share/cmake/Torch/TorchConfig.cmake
else
  TORCH_INC   := /usr/include
  TORCH_LIB   := /usr/lib/x86_64-linux-gnu
  TORCH_CMAKE := /usr/lib/x86_64-linux-gnu/cmake/Torch/TorchConfig.cmake
endif
TORCH_ABI  := $(shell grep -o '_GLIBCXX_USE_CXX11_ABI=[01]' $(TORCH_CMAKE) 2>/dev/null | head -1)
TORCH_ABI  := $(if $(TORCH_ABI),$(TORCH_ABI),_GLIBCXX_USE_CXX11_ABI=1)
TORCH_CUDA := $(wildcard $(TORCH_LIB)/libtorch_cuda.so)
# -isystem /usr/include would break libstdc++'s #include_next: add the prefix only when not /usr
CXXFLAGS   += -D$(TORCH_ABI) $(if $(filter /usr/include,$(TORCH_INC)),,-isystem $(TORCH_INC)) -isystem $(TORCH_INC)/torch/csrc/api/include
TORCH_LIBS := -L$(TORCH_LIB) -Wl,-rpath,$(TORCH_LIB)
CUDA_HOME  ?= $(firstword $(wildcard /usr/local/cuda /opt/cuda) /usr/local/cuda)
# The shim's own CUDA kernels (framework/nn_cuda.cu) are built where nvcc is present beside a
# CUDA libtorch (NVCC= leaves them out: the fused ensembles then use ATen's kernels only).
NVCC       ?= $(firstword $(wildcard $(CUDA_HOME)/bin/nvcc))
NVCC_ARCH  ?= -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90
ifneq ($(TORCH_CUDA),)
  CXXFLAGS   += -DPMI_CUDA=1 -isystem $(CUDA_HOME)/include
  ifneq ($(NVCC),)
    CXXFLAGS += -DPMI_CUDA_KERNELS=1
    CU_OBJ   := $(BUILD)/nn_cuda.o
  endif
  TORCH_LIBS += -Wl,--no-as-needed -ltorch_cuda -lc10_cuda -Wl,--as-needed
  # the shim calls the CUDA runtime itself (events, graphs): the libcudart that torch ships, else CUDA_HOME's
  CUDART     := $(firstword $(wildcard $(TORCH_LIB)/../../nvidia/*/lib/libcudart.so* $(TORCH_LIB)/libcudart*.so* $(CUDA_HOME)/lib64/libcudart.so))
  TORCH_LIBS += $(CUDART) -Wl,-rpath,$(dir $(CUDART))
endif
TORCH_LIBS += -ltorch -ltorch_cpu -lc10 -lstdc++

# ---- sources: every framework/*.c and *.cpp; main.c is the CLI entry --------------------
C_SRC    := $(wildcard framework/*.c)
CXX_SRC  := $(wildcard framework/*.cpp)
LIB_OBJ  := $(patsubst framework/%.c,$(BUILD)/%.o,$(filter-out framework/main.c,$(C_SRC))) \
            $(patsubst framework/%.cpp,$(BUILD)/%.o,$(CXX_SRC)) $(CU_OBJ) $(BUILD)/version.o
TEST_SRC := $(wildcard tests/test_*.c)
TEST_BIN := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRC))

.PHONY: all deps checkdeps test reproduce fuzz fuzz-results test-slurm bench-perm plots install clean info FORCE
all: info $(PMI)

info:
	@echo "pmi-lab build: torch=$(TORCH_INC) ($(TORCH_ABI)) cuda=$(if $(TORCH_CUDA),yes ($(CUDA_HOME)$(if $(CU_OBJ),, no nvcc: ATen kernels only)),no) hdf5=$(PKGS_HDF5) gnuplot=$(if $(shell command -v gnuplot),yes,no) scale=$(SCALE)"

# Names any missing library and its package, instead of a compiler error; runs before compiling.
checkdeps:
	@CC='$(CC)' CXX='$(CXX)' TORCH_DIR='$(TORCH_DIR)' TORCH_INC='$(TORCH_INC)' scripts/deps.sh --check

$(PMI): $(BUILD)/main.o $(LIB_OBJ)
	$(CXX) $(LDFLAGS) -o $@ $^ $(TORCH_LIBS) $(LDLIBS)

$(BUILD)/%.o: framework/%.c | $(BUILD) checkdeps
	$(CC) $(CFLAGS) -c -o $@ $<
$(BUILD)/%.o: framework/%.cpp | $(BUILD) checkdeps
	$(CXX) $(CXXFLAGS) -c -o $@ $<
$(BUILD)/nn_cuda.o: framework/nn_cuda.cu framework/nn_cuda.h | $(BUILD)
	$(NVCC) -std=c++17 -O3 $(NVCC_ARCH) -Xcompiler -fPIC -Iframework -c -o $@ $<
# The install's data folder, where plot.c looks for the templates (besides ../share/pmi-lab
# next to the binary); $(BUILD)/datadir records the one compiled in, for make install.
$(BUILD)/plot.o: CFLAGS += -DPMI_DATADIR=\"$(DATADIR)\"
$(BUILD)/plot.o: framework/plot.c | $(BUILD) checkdeps
	$(CC) $(CFLAGS) -c -o $@ $<
	@echo '$(DATADIR)' > $(BUILD)/datadir
# The build stamp (framework/version.h): regenerated on every make, rewritten only when it changes.
$(BUILD)/version.c: FORCE | $(BUILD)
	@scripts/version.sh $@
$(BUILD)/version.o: $(BUILD)/version.c | checkdeps
	$(CC) $(CFLAGS) -c -o $@ $<
# Tests link the whole library archive; while a module is in flux elsewhere, build one test
# against the objects it needs: make build/tests/test_pmi TEST_OBJS=build/pmi.o
TEST_OBJS ?= $(BUILD)/libpmi.a
$(BUILD)/libpmi.a: $(LIB_OBJ)
	ar rcs $@ $^
$(BUILD)/tests/%.o: tests/%.c | $(BUILD) checkdeps
	$(CC) $(CFLAGS) -c -o $@ $<
$(BUILD)/tests/%: $(BUILD)/tests/%.o $(TEST_OBJS)
	$(CXX) $(LDFLAGS) -o $@ $< $(TEST_OBJS) $(TORCH_LIBS) $(LDLIBS) -lcmocka
$(BUILD):
	@mkdir -p $(BUILD)/tests

deps:
	@TORCH_DIR='$(TORCH_DIR)' scripts/deps.sh

# The shell tests (tests/test_*.sh) exec $(PMI) and re-run make with PMI_MAKEARGS.
test: deps
	@$(MAKE) --no-print-directory all $(TEST_BIN)
	@PMI_BIN=./$(PMI) PMI_MAKEARGS='$(if $(SAN),SAN=$(SAN)) $(if $(TORCH_DIR),TORCH_DIR=$(TORCH_DIR))' \
	  scripts/run-tests.sh $(BUILD)/tests

# libFuzzer (clang) over the config, IDX, CIFAR and safetensors readers (fuzz-results: the HDF5
# results readers); a finding fails it.
FUZZ_SECONDS ?= 60
fuzz: deps
	@$(MAKE) --no-print-directory -C tests/fuzz run-readers SECONDS=$(FUZZ_SECONDS)
	@$(MAKE) --no-print-directory -C tests/fuzz run-safetensors SECONDS=$(FUZZ_SECONDS)

fuzz-results: deps all
	@$(MAKE) --no-print-directory -C tests/fuzz run-results SECONDS=$(FUZZ_SECONDS)

# The cost of a job's permutation tests, one stream per test vs one shared batch
# (scripts/bench/bench-perm.c; docs/performance.md has the numbers). BENCH_ARGS: T N m R.
$(BUILD)/bench-perm: scripts/bench/bench-perm.c $(BUILD)/pmi.o $(BUILD)/util.o | $(BUILD) checkdeps
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/pmi.o $(BUILD)/util.o $(LDFLAGS) $(LDLIBS)
bench-perm: $(BUILD)/bench-perm
	@$(BUILD)/bench-perm $(BENCH_ARGS)

# The cluster path through a real single-node Slurm started for the test (root; installs
# slurm-wlm and munge if missing): tests/slurm.sh.
test-slurm: deps
	@$(MAKE) --no-print-directory all
	@PMI_BIN=./$(PMI) bash tests/slurm.sh

reproduce: deps
	@$(MAKE) --no-print-directory all
	@scripts/reproduce.sh $(SCALE)

# figures of every merged results file of a scale (after make reproduce)
plots: all
	@for f in results/$(SCALE)/*/results.h5; do \
	  [ -f "$$f" ] || { echo "make plots: no results/$(SCALE)/*/results.h5 (run make reproduce first)"; exit 1; }; \
	  d=plots/$(SCALE)/$$(basename $$(dirname $$f)); ./$(PMI) plot $$f -o $$d && ./$(PMI) plot $$f -o $$d/svg --format svg; done

install: $(PMI)
	@[ "$$(cat $(BUILD)/datadir 2>/dev/null)" = '$(DATADIR)' ] || echo "install: note: $(PMI) was compiled to look" \
	  "for its templates in $$(cat $(BUILD)/datadir 2>/dev/null), not $(DATADIR); installed, it finds them in" \
	  "../share/pmi-lab beside itself (rm $(BUILD)/plot.o and install again to compile in $(DATADIR))"
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(DATADIR)/plots $(DESTDIR)$(PREFIX)/share/doc/pmi-lab/figures
	install -m 755 $(PMI) $(DESTDIR)$(PREFIX)/bin/pmi
	install -m 644 plots/*.gp $(DESTDIR)$(DATADIR)/plots/
	install -m 644 README.md docs/*.md $(DESTDIR)$(PREFIX)/share/doc/pmi-lab/
	install -m 644 docs/figures/* $(DESTDIR)$(PREFIX)/share/doc/pmi-lab/figures/
	install -d $(DESTDIR)$(PREFIX)/share/bash-completion/completions
	./$(PMI) completion bash > $(DESTDIR)$(PREFIX)/share/bash-completion/completions/pmi

clean:
	rm -rf $(BUILD_BASE) $(BUILD_BASE)-san pmi

-include $(wildcard $(BUILD)/*.d $(BUILD)/tests/*.d)
.SECONDARY:
