# Sourced by every device script (run.sh, sweep.sh, with_env.sh) from the repository root of the
# device's copy: unpacks the Vulkan loader and the wheels, points Python at the carried tree
# (.carry/wt), lays out the import package as pyproject.toml installs it (daemon/, client/,
# protocol/ under dsd/) and builds dsd._native for the device's Python with the carried
# liburing/libzstd. Leaves the shell in .carry/wt with C (.carry) and W (.carry/wt) set.
for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
C=$PWD/.carry
W=$C/wt
export PYTHONPATH=$W:/tmp/site PYTHONUNBUFFERED=1 LD_LIBRARY_PATH=$C/sys/lib CONF=$C/conf
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
cd $W
for p in daemon client protocol; do rm -rf dsd/$p; cp -r $p dsd/$p; done
gcc -O3 -std=gnu11 -Wall -Wextra -Werror -Wno-missing-field-initializers -shared -fPIC -fvisibility=hidden \
    -Inative -I$C/sys/include $(python3-config --includes) native/*.c -o dsd/_native$(python3-config --extension-suffix) \
    $C/sys/lib/liburing.so.2 $C/sys/lib/libzstd.so.1 -lpthread 2>&1 | tail -5
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv
echo "git: $(cat $C/wt.rev 2>/dev/null)"
