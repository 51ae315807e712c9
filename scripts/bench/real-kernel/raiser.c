/*
 * The real-kernel benchmark's fault raiser: one IOMMUFD_TEST mock device
 * raises faults with IOMMU_TEST_OP_TRIGGER_IOPF, the same way for the C
 * responder and for the relay path.
 *
 *   raiser DEV_ID PASID_BASE COUNT RATE
 *
 * fd 3 is the iommufd that owns the device (inherited). Fault i carries
 * PASID PASID_BASE + i, by which the answering side names it. RATE 0 raises
 * back to back; otherwise fault i is raised i / RATE seconds after the first.
 * Prints "PASID US" per fault once all are raised: US is CLOCK_REALTIME in
 * microseconds just before the fault's ioctl (the clock node's Date.now()
 * reads, which the relay's events are stamped with).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <linux/iommufd.h>
#include "iommufd_test.h"

#define IOMMU_FD 3

static uint64_t now_us(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Sleeps until `at` microseconds of CLOCK_MONOTONIC: a fixed schedule that a late wake-up does not shift. */
static void sleep_until(uint64_t at)
{
	struct timespec ts = { .tv_sec = (time_t)(at / 1000000u), .tv_nsec = (long)(at % 1000000u) * 1000 };
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static unsigned long arg(char **argv, int i, const char *what)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(argv[i], &end, 10);
	if (errno || *end || end == argv[i]) {
		fprintf(stderr, "raiser: %s: expected a decimal number, got \"%s\"\n", what, argv[i]);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: raiser DEV_ID PASID_BASE COUNT RATE (fd 3: the iommufd)\n");
		return 2;
	}
	uint32_t dev = (uint32_t)arg(argv, 1, "DEV_ID");
	uint32_t base = (uint32_t)arg(argv, 2, "PASID_BASE");
	uint32_t count = (uint32_t)arg(argv, 3, "COUNT");
	unsigned long rate = arg(argv, 4, "RATE");
	uint64_t *raised = calloc(count ? count : 1, sizeof *raised);
	if (!raised) {
		fprintf(stderr, "raiser: out of memory for %u timestamps\n", count);
		return 2;
	}
	uint64_t start = now_us(CLOCK_MONOTONIC);
	for (uint32_t i = 0; i < count; i++) {
		if (rate)
			sleep_until(start + (uint64_t)i * 1000000u / rate);
		struct iommu_test_cmd cmd = {
			.size = sizeof cmd,
			.op = IOMMU_TEST_OP_TRIGGER_IOPF,
			.trigger_iopf = {
				.dev_id = dev,
				.pasid = base + i,
				.grpid = i & 0x1ff, /* PCIe PRI's 9-bit page request group index */
				.perm = IOMMU_PGFAULT_PERM_READ,
				.addr = (uint64_t)(i + 1) << 12,
			},
		};
		raised[i] = now_us(CLOCK_REALTIME);
		if (ioctl(IOMMU_FD, IOMMU_TEST_CMD, &cmd) < 0) {
			fprintf(stderr, "raiser: TRIGGER_IOPF of fault %u on device %u failed: %s; expected a CONFIG_IOMMUFD_TEST kernel "
				"and the device on a HWPT with a fault object\n", i, dev, strerror(errno));
			return 1;
		}
	}
	for (uint32_t i = 0; i < count; i++)
		printf("%u %llu\n", base + i, (unsigned long long)raised[i]);
	return fflush(stdout) == 0 ? 0 : 1;
}
