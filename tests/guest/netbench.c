/* netbench HOST PORT-IN PORT-OUT MIB: the guest side of bench/net.sh. Connects to HOST:PORT-IN and
 * reads until the host closes (host to guest), then connects to HOST:PORT-OUT, writes MIB MiB and
 * waits for the host to close in turn, so that the time covers every byte received there (guest to
 * host). Prints each as "VMMBENCH name=MB/s" (rx, tx) and the bytes received as "VMMBENCH
 * rxbytes=N". 256 KiB per read and write: the figure is the VMM's, not the copy loop's. For each
 * direction also the guest's side of it: the virtio-net interrupts it took ("rx_irqs", "tx_irqs":
 * its receive and transmit queues' together) and the share of its CPU time not idle ("rx_busy",
 * "tx_busy", in %), which say what a figure cost the guest. */
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

/* What the guest spent: virtio-net queue interrupts (/proc/interrupts names them virtioN-input.K
 * and virtioN-output.K, one column per CPU) and CPU time (/proc/stat, in ticks). */
struct spent {
	unsigned long long irqs, busy, total;
};

static void spent_now(struct spent *s)
{
	char line[4096];
	unsigned long long v[8] = { 0 };
	FILE *f = fopen("/proc/interrupts", "r");

	memset(s, 0, sizeof(*s));
	while (f && fgets(line, sizeof(line), f)) {
		char *p = strchr(line, ':'), *end;

		if (!p || (!strstr(line, "-input.") && !strstr(line, "-output.")))
			continue;
		for (p++;; p = end) {
			unsigned long long n = strtoull(p, &end, 10);

			if (end == p)
				break;
			s->irqs += n;
		}
	}
	if (f)
		fclose(f);
	f = fopen("/proc/stat", "r");
	if (f && fgets(line, sizeof(line), f) &&
	    sscanf(line, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
		   &v[4], &v[5], &v[6], &v[7]) == 8) {
		for (int i = 0; i < 8; i++)
			s->total += v[i];
		s->busy = s->total - v[3] - v[4]; /* all but idle and iowait */
	}
	if (f)
		fclose(f);
}

static void spent_print(const char *dir, const struct spent *a)
{
	struct spent b;

	spent_now(&b);
	printf("VMMBENCH %s_irqs=%llu\n", dir, b.irqs - a->irqs);
	printf("VMMBENCH %s_busy=%.0f\n", dir,
	       b.total > a->total ? 100.0 * (b.busy - a->busy) / (b.total - a->total) : 0.0);
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
	struct spent at;
	double t;
	int fd;

	if (argc != 5)
		return fprintf(stderr, "usage: netbench HOST PORT-IN PORT-OUT MIB\n"), 2;
	mib = strtoull(argv[4], NULL, 10);

	spent_now(&at);
	t = now();
	fd = dial(argv[1], argv[2]);
	rx = drain(fd);
	t = now() - t;
	spent_print("rx", &at);
	close(fd);
	printf("VMMBENCH rxbytes=%llu\n", (unsigned long long)rx);
	printf("VMMBENCH rx=%.1f\n", rx / 1e6 / t);

	memset(buf, 0x5a, sizeof(buf));
	spent_now(&at);
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
	spent_print("tx", &at);
	printf("VMMBENCH tx=%.1f\n", (mib << 20) / 1e6 / t);
	return 0;
}
