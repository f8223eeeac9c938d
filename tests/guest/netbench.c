/* netbench HOST PORT-IN PORT-OUT MIB: the guest side of bench/net.sh. Connects to HOST:PORT-IN and
 * reads until the host closes (host to guest), then connects to HOST:PORT-OUT, writes MIB MiB and
 * waits for the host to close in turn, so that the time covers every byte received there (guest to
 * host). Prints each as "VMMBENCH name=MB/s" (rx, tx) and the bytes received as "VMMBENCH
 * rxbytes=N". 256 KiB per read and write: the figure is the VMM's, not the copy loop's. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (256 << 10)

static char buf[CHUNK];

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int dial(const char *host, const char *port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(atoi(port))};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0 || inet_pton(AF_INET, host, &sa.sin_addr) != 1 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		perror("netbench: connect");
		exit(1);
	}
	return fd;
}

/* Reads fd to its end; returns the byte count. */
static uint64_t drain(int fd)
{
	uint64_t total = 0;
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0)
		total += n;
	if (n < 0) {
		perror("netbench: read");
		exit(1);
	}
	return total;
}

int main(int argc, char **argv)
{
	uint64_t mib, rx;
	double t;
	int fd;

	if (argc != 5)
		return fprintf(stderr, "usage: netbench HOST PORT-IN PORT-OUT MIB\n"), 2;
	mib = strtoull(argv[4], NULL, 10);

	t = now();
	fd = dial(argv[1], argv[2]);
	rx = drain(fd);
	t = now() - t;
	close(fd);
	printf("VMMBENCH rxbytes=%llu\n", (unsigned long long)rx);
	printf("VMMBENCH rx=%.1f\n", rx / 1e6 / t);

	memset(buf, 0x5a, sizeof(buf));
	t = now();
	fd = dial(argv[1], argv[3]);
	for (uint64_t left = mib << 20; left;) {
		ssize_t n = write(fd, buf, left < sizeof(buf) ? left : sizeof(buf));

		if (n <= 0) {
			perror("netbench: write");
			return 1;
		}
		left -= n;
	}
	shutdown(fd, SHUT_WR);
	drain(fd); /* the host closes once it has read everything */
	t = now() - t;
	printf("VMMBENCH tx=%.1f\n", (mib << 20) / 1e6 / t);
	return 0;
}
