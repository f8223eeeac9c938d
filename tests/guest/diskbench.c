/* diskbench DEV MIB SECONDS: the guest side of bench/disk.sh. On block device DEV, with O_DIRECT
 * (so the guest's page cache is out of the picture) and one request at a time:
 *   seqwrite, seqread  1 MiB requests over the first MIB MiB, in MB/s
 *   randwrite, randread 4 KiB requests at random 4 KiB offsets in that range, for SECONDS s, in IOPS
 * and prints each as "VMMBENCH name=value". Static, no libc beyond the system calls it needs. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static int fail(const char *what)
{
	perror(what);
	return 1;
}

int main(int argc, char **argv)
{
	uint64_t mib, seed = 0x9e3779b97f4a7c15ULL;
	double secs, t;
	void *buf;
	int fd;

	if (argc != 4)
		return fprintf(stderr, "usage: diskbench DEV MIB SECONDS\n"), 2;
	mib = strtoull(argv[2], NULL, 10);
	secs = atof(argv[3]);
	fd = open(argv[1], O_RDWR | O_DIRECT);
	if (fd < 0)
		return fail(argv[1]);
	if (posix_memalign(&buf, 4096, 1 << 20))
		return 1;
	memset(buf, 0x5a, 1 << 20);

	t = now();
	for (uint64_t i = 0; i < mib; i++)
		if (pwrite(fd, buf, 1 << 20, (off_t)(i << 20)) != 1 << 20)
			return fail("seqwrite");
	if (fdatasync(fd))
		return fail("fdatasync");
	printf("VMMBENCH seqwrite=%.1f\n", mib * 1.048576 / (now() - t));
	t = now();
	for (uint64_t i = 0; i < mib; i++)
		if (pread(fd, buf, 1 << 20, (off_t)(i << 20)) != 1 << 20)
			return fail("seqread");
	printf("VMMBENCH seqread=%.1f\n", mib * 1.048576 / (now() - t));

	for (int w = 1; w >= 0; w--) {
		uint64_t n = 0, blocks = mib * 256;
		double end = now() + secs;

		t = now();
		while (now() < end) {
			for (int k = 0; k < 64; k++, n++) {
				off_t off = (off_t)(rnd(&seed) % blocks) * 4096;
				ssize_t r = w ? pwrite(fd, buf, 4096, off) : pread(fd, buf, 4096, off);
				if (r != 4096)
					return fail(w ? "randwrite" : "randread");
			}
		}
		printf("VMMBENCH %s=%.0f\n", w ? "randwrite" : "randread", n / (now() - t));
	}
	close(fd);
	return 0;
}
