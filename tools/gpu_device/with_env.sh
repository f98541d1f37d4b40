#!/bin/bash
# One device call running any command in the carried tree (.carry/wt) with the set-up of run.sh:
# Vulkan loader + wheels, dsd._native built for the device's Python. Usage:
#   bash .carry/with_env.sh python3 tools/gpu_device/scaling.py
set -u
source .carry/wt/tools/gpu_device/setup.sh
"$@"
