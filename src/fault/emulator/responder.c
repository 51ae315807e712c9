/*
 * The trivial responder: the fastest possible relay, for measuring the
 * kernel emulator's own throughput. It reads fault records from fd 3 and
 * answers every group (its LAST_PAGE record) with SUCCESS, all answers of one
 * read in one write. It exits at EOF.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define REC_SIZE 40
#define CHUNK (64 * 1024 / REC_SIZE * REC_SIZE)

static int write_all(const uint8_t *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(3, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int main(void)
{
	static uint8_t in[CHUNK + REC_SIZE], out[(CHUNK / REC_SIZE + 1) * 8];
	size_t carry = 0;
	for (;;) {
		ssize_t n = read(3, in + carry, CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 0;
		size_t total = carry + (size_t)n, whole = total - total % REC_SIZE, o = 0;
		for (size_t p = 0; p < whole; p += REC_SIZE) {
			uint32_t flags, cookie, code = 0;
			memcpy(&flags, in + p, 4);
			memcpy(&cookie, in + p + 36, 4);
			if (flags & 2) {
				memcpy(out + o, &cookie, 4);
				memcpy(out + o + 4, &code, 4);
				o += 8;
			}
		}
		carry = total - whole;
		memmove(in, in + whole, carry);
		if (write_all(out, o) < 0)
			return 0;
	}
}
