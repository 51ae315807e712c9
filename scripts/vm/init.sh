#!/bin/sh
# PID 1 of the test guest (busybox sh). Sets up the filesystems a test needs,
# runs the per-run job /job/run.sh, prints its status as the last line the
# host looks for, and powers off so QEMU exits.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root IOPF_RELAY_ROOT=/opt/iopf-relay

mount -t proc proc /proc
# The host measures boot-to-/init from this line (guest uptime in seconds).
read -r up _ </proc/uptime
echo "IOPF-VM-INIT uptime=$up"

mount -t sysfs sysfs /sys
# DEVTMPFS_MOUNT does not apply when the root is an initramfs.
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/shm /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t debugfs debugfs /sys/kernel/debug
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
ip link set lo up

cd /job
sh /job/run.sh
code=$?
# Leading newline: kernel messages may have left the console mid-line.
printf '\nIOPF-VM-EXIT %d\n' "$code"
poweroff -f
