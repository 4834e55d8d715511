# Thin wrapper over CMake: the two README commands and a few conveniences.
#   make run    the main job (grows with the project)
#   make test   build and run every test (ctest labels unit, mpi, slurm, gpu)
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
CTEST_FLAGS ?=

.PHONY: all build deps run test data clean sanitize

all: build

deps:
	@tools/install-deps.sh build

$(BUILD)/CMakeCache.txt: | deps
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

run: build
	@tools/run-main-job.sh $(BUILD)

test: build
	@tools/install-deps.sh test
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) $(CTEST_FLAGS)

# The sanitizer build runs the unit tests under ASan + UBSan.
sanitize:
	$(MAKE) test BUILD=build-sanitize CMAKE_FLAGS="-DSCANFLASH_SANITIZE=ON -DSCANFLASH_CUDA=OFF" CTEST_FLAGS="-L unit"

# Downloads the official HumanEval+ v0.1.10 and GPT-NeoX-20B tokenizer files
# into data/ (git-ignored) and checks their sha256.
data:
	@tools/fetch-data.sh data

clean:
	rm -rf $(BUILD) build-sanitize
