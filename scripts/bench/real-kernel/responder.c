/*
 * The real-kernel benchmark's baseline: the least a userspace responder can
 * do on a real iommufd fault fd (fd 3), as scripts/bench/baseline-responder.c
 * does on the emulator: poll, read every queued record, answer each group
 * SUCCESS in one write.
 *
 *   responder COUNT
 *
 * Prints "ready" once it polls, and after COUNT groups "PASID US" per group:
 * US is CLOCK_REALTIME in microseconds right after the write that answered
 * it returned (the kernel completes a group inside that write). Exits 1 on
 * a refused answer, 0 early when stdin closes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/iommufd.h>

#define FAULT_FD 3
#define BATCH 1600 /* records per read: 64000 bytes */

struct answered {
	uint32_t pasid;
	uint64_t us;
};

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int main(int argc, char **argv)
{
	long count = argc == 2 ? strtol(argv[1], NULL, 10) : -1;
	if (count < 0) {
		fprintf(stderr, "usage: responder COUNT (fd 3: an iommufd fault fd)\n");
		return 2;
	}
	static struct iommu_hwpt_pgfault in[BATCH];
	static struct iommu_hwpt_page_response out[BATCH];
	static uint32_t pasids[BATCH];
	struct answered *done = calloc((size_t)count + 1, sizeof *done);
	if (!done) {
		fprintf(stderr, "responder: out of memory for %ld answers\n", count);
		return 2;
	}
	long n_done = 0;
	printf("ready\n");
	fflush(stdout);
	while (n_done < count) {
		struct pollfd pfd[2] = { { .fd = FAULT_FD, .events = POLLIN }, { .fd = 0, .events = POLLIN } };
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			perror("responder: poll");
			return 1;
		}
		if (pfd[1].revents & (POLLIN | POLLHUP))
			return 0;
		if (!(pfd[0].revents & POLLIN))
			continue;
		/* A fault fd's read never blocks: 0 bytes when the queue is empty. */
		ssize_t n = read(FAULT_FD, in, sizeof in);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			fprintf(stderr, "responder: reading the fault fd failed: %s\n", strerror(errno));
			return 1;
		}
		size_t groups = 0;
		for (size_t i = 0; i < (size_t)n / sizeof in[0]; i++) {
			if (!(in[i].flags & IOMMU_PGFAULT_FLAGS_LAST_PAGE))
				continue;
			out[groups] = (struct iommu_hwpt_page_response){ .cookie = in[i].cookie, .code = IOMMUFD_PAGE_RESP_SUCCESS };
			pasids[groups++] = in[i].pasid;
		}
		if (groups == 0)
			continue;
		ssize_t w = write(FAULT_FD, out, groups * sizeof out[0]);
		uint64_t t = now_us();
		if (w != (ssize_t)(groups * sizeof out[0])) {
			fprintf(stderr, "responder: the kernel took %zd of %zu answer bytes (%s); expected all: a cookie it did not issue?\n",
				w, groups * sizeof out[0], w < 0 ? strerror(errno) : "short write");
			return 1;
		}
		for (size_t g = 0; g < groups && n_done < count; g++)
			done[n_done++] = (struct answered){ pasids[g], t };
	}
	for (long i = 0; i < n_done; i++)
		printf("%u %llu\n", done[i].pasid, (unsigned long long)done[i].us);
	return fflush(stdout) == 0 ? 0 : 1;
}
