# The two commands a user needs: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.lumde-installed
# Pinned: an unpinned torch pulls a multi-GB CUDA build (see README, Installation).
TORCH_VERSION := 2.13.0
# ROS 2 from PyPI, installed only when no rclpy is importable (a sourced ROS 2 already has them).
ROS_WHEELS := ros-rclpy ros-rmw-fastrtps-cpp ros-sensor-msgs ros-std-msgs ros-std-srvs \
	ros-geometry-msgs ros-nav-msgs ros-diagnostic-msgs ros-rcl-interfaces ros-ament-index-python

.PHONY: venv demo test benchmark clean

venv: $(STAMP)

$(STAMP): setup.py package.xml requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==$(TORCH_VERSION)
	@if $(BIN)/python -c "import rclpy" 2>/dev/null; then \
		echo "rclpy is importable (a sourced ROS 2): not installing the ROS 2 wheels"; \
	else \
		$(BIN)/pip install -q $(ROS_WHEELS); \
	fi
	$(BIN)/pip install -q -r requirements.txt -r requirements-dev.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $@

demo: $(STAMP)
	$(BIN)/lumde demo --out demo_output

# Two workers (a test module stays on one, so its module fixtures are made once).
test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadscope test

benchmark: $(STAMP)
	$(BIN)/python benchmarks/backends.py

clean:
	rm -rf $(VENV) demo_output build install log *.egg-info
