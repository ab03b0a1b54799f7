# pixio_ros developer entry points. `make demo` and `make test` are the whole set-up.
#
# setup: Debian packages (if missing), .venv, a NON-editable install of the package with every
# extra (editable installs skip data_files, which ament's share directory needs), and
# .venv/pixio_env.sh, sourced by the targets below. pip ignores setup.cfg's install_scripts, so the
# executables that `ros2 run` and launch_ros look for in <prefix>/lib/pixio_ros are linked there.

PYTHON ?= python3
# ROS 2 wheels: jazzy (.venv, the whole suite) or kilted (.venv-kilted, Fast DDS 3: only the tests
# marked `ros`, see test/conftest.py). Not ROS_DISTRO: a sourced ROS sets that in the environment.
# The two cannot share a venv (each pins its own ros-rclpy, ros-fastrtps, ...).
DISTRO ?= jazzy
# LANE=py310: Python 3.10 (Humble's, Ubuntu 22.04) with the cp310 Jazzy wheels in .venv-py310, the
# tests marked `ros` (`make test-py310`). Empty: the distro's own lane above.
LANE ?=
ifeq ($(LANE),py310)
VENV := .venv-py310
PYTHON_VERSION := 3.10
else ifeq ($(DISTRO),jazzy)
VENV := .venv
else
VENV := .venv-$(DISTRO)
endif
# The first of python3.X / python3 that is Python X; else one installed by pyenv (its shims run a
# version only once it is selected).
find_python = $(firstword $(foreach candidate,python$(1) python3,$(shell $(candidate) -c \
	'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null | grep -qx '$(1)' && echo \
	$(candidate))) $(shell PYENV_VERSION=$(1) pyenv which python$(1) 2>/dev/null))
ifdef PYTHON_VERSION
PYTHON = $(call find_python,$(PYTHON_VERSION))
endif
# The whole suite runs in .venv only; the other lanes run the ROS-facing tests.
FULL_SUITE := $(if $(filter .venv,$(VENV)),yes,)
BIN := $(VENV)/bin
ENV_FILE := $(VENV)/pixio_env.sh
DEPS_STAMP := $(VENV)/.deps-installed
PKG_STAMP := $(VENV)/.package-installed
# Console scripts (setup.py) that ros2 run / launch_ros start from $(LIBEXEC), as colcon installs them.
LIBEXEC := $(VENV)/lib/pixio_ros
LIBEXEC_SCRIPTS := pixio_node pixio_lifecycle_node pixio_policy_node
LIBEXEC_STAMP := $(VENV)/.libexec-linked
APT_PACKAGES := libusb-1.0-0
EXTRAS := ros,eval,test,reference,datasets,policy,onnx,openvino,quantize,viz
comma := ,
space := $(subst ,, )
ifneq ($(FULL_SUITE),yes)
# The same extras with DISTRO's ROS wheels, less transformers (only the model tests compare to it),
# the ONNX backends and INT8 quantisation (their node tests run in .venv; here they skip) and
# Rerun (eval only).
ROS_EXTRA := $(if $(filter jazzy,$(DISTRO)),ros,ros-$(DISTRO))
EXTRAS := $(subst $(space),$(comma),$(patsubst ros,$(ROS_EXTRA),$(filter-out reference onnx openvino quantize viz,$(subst $(comma),$(space),$(EXTRAS)))))
endif
# Fast DDS 2.x (Jazzy) reads FASTRTPS_DEFAULT_PROFILES_FILE; 3.x (Kilted) reads FASTDDS_* and warns
# on every participant about FASTRTPS_* (the table for Python is pixio_ros/ros/fastdds.py).
PROFILE_VARIABLE := $(if $(filter jazzy,$(DISTRO)),FASTRTPS,FASTDDS)_DEFAULT_PROFILES_FILE
SOURCES := $(shell find pixio_ros launch config resource -type f -not -name '*.pyc') setup.py setup.cfg package.xml

.PHONY: setup test test-kilted test-py310 lint demo clean settings-text

setup: $(PKG_STAMP) $(LIBEXEC_STAMP) $(ENV_FILE)

$(DEPS_STAMP): constraints.txt setup.py
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "apt-get install$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update && $$SUDO apt-get install -y --no-install-recommends $$missing; \
	fi
	@test -n "$(PYTHON)" || { echo "make setup: Python $(PYTHON_VERSION) not found for $(VENV): \
	install it (apt install python$(PYTHON_VERSION)-venv, or pyenv install $(PYTHON_VERSION)) \
	or name it: make $(MAKECMDGOALS) PYTHON=/path/to/python$(PYTHON_VERSION)" >&2; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt setuptools wheel
	$(BIN)/python -m pip install --quiet --no-build-isolation -c constraints.txt '.[$(EXTRAS)]'
	rm -rf build pixio_ros.egg-info
	touch $@

# setuptools reuses build/: it is cleared so that deleted modules never reach the installed package.
$(PKG_STAMP): $(DEPS_STAMP) $(SOURCES)
	rm -rf build pixio_ros.egg-info
	$(BIN)/python -m pip uninstall --quiet --yes pixio_ros 2>/dev/null || true
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation .
	rm -rf build pixio_ros.egg-info
	touch $@

# Relative links, so the venv's own entry points (and their interpreter) are what runs.
$(LIBEXEC_STAMP): $(PKG_STAMP) Makefile
	mkdir -p $(LIBEXEC)
	for script in $(LIBEXEC_SCRIPTS); do \
	  test -x $(BIN)/$$script || { echo "$(BIN)/$$script missing: is it in setup.py's console_scripts?" >&2; exit 1; }; \
	  ln -sfn ../../bin/$$script $(LIBEXEC)/$$script; \
	done
	touch $@

$(ENV_FILE): Makefile | $(DEPS_STAMP)
	@echo '# Written by `make setup`. Source it to use pixio_ros from this checkout.' > $@
	@echo 'export AMENT_PREFIX_PATH="$(abspath $(VENV))$${AMENT_PREFIX_PATH:+:$$AMENT_PREFIX_PATH}"' >> $@
	@echo 'export PATH="$(abspath $(BIN)):$$PATH"' >> $@
	@echo '# The distro of these wheels, as a sourced ROS sets it (pixio_ros.ros.fastdds reads it).' >> $@
	@echo 'export ROS_DISTRO=$(DISTRO)' >> $@
	@echo '# $(PROFILE_VARIABLE) is what $(DISTRO)'"'"'s Fast DDS reads; a profile you set wins.' >> $@
	@echo 'export $(PROFILE_VARIABLE)="$${FASTRTPS_DEFAULT_PROFILES_FILE:-$${FASTDDS_DEFAULT_PROFILES_FILE:-$(abspath config/fastdds_shm.xml)}}"' >> $@
	@echo 'export RMW_IMPLEMENTATION="$${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"' >> $@

# Lint, format and type checks (config in pyproject.toml); `make test` runs them first.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Coverage of the whole suite (Jazzy only): line and branch figures printed after the run, and the
# run fails when the total (lines and branches together, coverage.py's figure) falls below
# COVERAGE_MIN, the measured level less at most one point (README, Development). Config in
# pyproject.toml; code run only in child processes is not counted.
COVERAGE_MIN := 85.8
COVERAGE_JSON := $(VENV)/coverage.json
PYTEST_COVERAGE := --cov --cov-report=term:skip-covered --cov-report=json:$(COVERAGE_JSON) \
	--cov-fail-under=$(COVERAGE_MIN)
define COVERAGE_SUMMARY
import json, sys
t = json.load(open(sys.argv[1]))['totals']
print(f"coverage: lines {t['percent_statements_covered']:.1f} % ({t['covered_lines']}/{t['num_statements']}), "
      f"branches {t['percent_branches_covered']:.1f} % ({t['covered_branches']}/{t['num_branches']}), "
      f"total {t['percent_covered']:.1f} % (gate $(COVERAGE_MIN) %)")
endef
export COVERAGE_SUMMARY

ifeq ($(FULL_SUITE),yes)
test: lint
	rm -f $(COVERAGE_JSON)
	. $(ENV_FILE) && status=0 && $(BIN)/pytest $(PYTEST_COVERAGE) || status=$$?; \
	if [ -f $(COVERAGE_JSON) ]; then $(BIN)/python -c "$$COVERAGE_SUMMARY" $(COVERAGE_JSON); fi; \
	exit $$status
else
# Lint and types do not depend on the distro or the Python: the .venv run checks them.
test: setup
	. $(ENV_FILE) && $(BIN)/pytest -m ros
endif

# The ROS-facing tests on ROS 2 Kilted wheels, in .venv-kilted beside .venv.
test-kilted:
	$(MAKE) test DISTRO=kilted

# The ROS-facing tests on Python 3.10 with the cp310 Jazzy wheels, in .venv-py310 beside .venv.
test-py310:
	$(MAKE) test LANE=py310

# config/pixio.yaml and the README's parameter table, regenerated from pixio_ros/ros/settings.py.
settings-text: setup
	$(BIN)/python -m pixio_ros.ros.settings_text .

demo: setup
	. $(ENV_FILE) && $(BIN)/pixio-ros demo

clean:
	rm -rf .venv .venv-kilted .venv-py310 build *.egg-info
