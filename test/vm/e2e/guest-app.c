// The guest program whose address space a device's PASID is bound to (the
// procmem handler's subject). It maps RW_PAGES read-write pages and
// RO_PAGES read-only pages, touches none of them (so /proc/PID/pagemap shows
// each one absent until the agent faults it in), prints where they are, and
// waits for EOF on stdin. Compiled on the host (the guest has no compiler)
// against the host's libc, which the guest image carries for node.
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096
#define RW_PAGES 16
#define RO_PAGES 2

int main(void)
{
	char *rw = mmap(NULL, RW_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *ro = mmap(NULL, RO_PAGES * PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (rw == MAP_FAILED || ro == MAP_FAILED) {
		perror("guest-app: mmap");
		return 1;
	}
	printf("GUEST-APP pid=%d rw=0x%lx rwPages=%d ro=0x%lx roPages=%d\n", (int)getpid(), (unsigned long)rw, RW_PAGES,
	       (unsigned long)ro, RO_PAGES);
	fflush(stdout);
	char buf[64];
	while (read(0, buf, sizeof buf) > 0) {
	}
	return 0;
}
