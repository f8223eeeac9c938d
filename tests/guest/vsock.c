/* vsock: the guest side of the vsock tests (mkinitrd.sh's vsock-listen and vsock-connect steps).
 *   vsock listen PORT MIB        accept one connection on PORT (any CID)
 *   vsock connect CID PORT MIB   connect to CID:PORT (the host is CID 2)
 * Either way the peer speaks first: read until it shuts its side (EOF), then send MIB MiB of a
 * pattern, shut ours and wait for the peer to close. Never both at once: a peer like socat, which
 * blocks in a write while the guest is not reading, would otherwise stop reading too. Prints
 * "VMMTEST vsock-KEY=VALUE" lines: cid (the guest's own, from /dev/vsock), listening, rx-bytes,
 * rx-md5, tx-bytes, tx-md5. The host compares the md5s with what it sent and received. MD5 is
 * computed here (RFC 1321) so that neither end needs a pipe through md5sum. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/socket.h> /* before linux/vm_sockets.h, which uses struct sockaddr */
#include <linux/vm_sockets.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define CHUNK (256 << 10)

static unsigned char buf[CHUNK];

struct md5 {
	uint32_t h[4];
	uint64_t len;
	unsigned char block[64];
};

static uint32_t rol(uint32_t x, int n)
{
	return x << n | x >> (32 - n);
}

static void md5_block(struct md5 *m, const unsigned char *p)
{
	/* each round's four rotations */
	static const int s[4][4] = {
	    {7, 12, 17, 22}, {5, 9, 14, 20}, {4, 11, 16, 23}, {6, 10, 15, 21}};
	static uint32_t k[64];
	uint32_t w[16], a = m->h[0], b = m->h[1], c = m->h[2], d = m->h[3];

	if (!k[0]) /* RFC 1321's table; a double holds each product exactly enough */
		for (int i = 0; i < 64; i++)
			k[i] = (uint32_t)(fabs(sin(i + 1)) * 4294967296.0);
	for (int i = 0; i < 16; i++)
		w[i] = p[4 * i] | p[4 * i + 1] << 8 | p[4 * i + 2] << 16 |
		       (uint32_t)p[4 * i + 3] << 24;
	for (int i = 0; i < 64; i++) {
		uint32_t f, t;
		int g;

		if (i < 16)
			f = (b & c) | (~b & d), g = i;
		else if (i < 32)
			f = (d & b) | (~d & c), g = (5 * i + 1) % 16;
		else if (i < 48)
			f = b ^ c ^ d, g = (3 * i + 5) % 16;
		else
			f = c ^ (b | ~d), g = 7 * i % 16;
		t = d;
		d = c;
		c = b;
		b = b + rol(a + f + k[i] + w[g], s[i / 16][i % 4]);
		a = t;
	}
	m->h[0] += a, m->h[1] += b, m->h[2] += c, m->h[3] += d;
}

static void md5_init(struct md5 *m)
{
	*m = (struct md5){.h = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476}};
}

static void md5_add(struct md5 *m, const unsigned char *p, size_t n)
{
	size_t have = m->len % 64;

	m->len += n;
	if (have) {
		size_t take = n < 64 - have ? n : 64 - have;

		memcpy(m->block + have, p, take);
		p += take, n -= take;
		if (have + take < 64)
			return;
		md5_block(m, m->block);
	}
	for (; n >= 64; p += 64, n -= 64)
		md5_block(m, p);
	memcpy(m->block, p, n);
}

static void md5_hex(struct md5 *m, char out[33])
{
	uint64_t bits = m->len * 8;
	unsigned char pad[72] = {0x80};
	size_t n = 64 - (m->len + 8) % 64;

	for (int i = 0; i < 8; i++)
		pad[n + i] = bits >> (8 * i);
	md5_add(m, pad, n + 8);
	for (int i = 0; i < 16; i++)
		sprintf(out + 2 * i, "%02x", m->h[i / 4] >> (8 * (i % 4)) & 0xff);
}

/* The pattern: 64-bit word i (little-endian) is i times an odd constant, so no stretch of it
 * repeats another and a lost, doubled or swapped buffer shows in the md5. */
static void pattern(unsigned char *p, size_t n, uint64_t word)
{
	for (size_t i = 0; i < n / 8; i++) {
		uint64_t v = (word + i) * 0x9e3779b97f4a7c15ull;

		for (int j = 0; j < 8; j++)
			p[8 * i + j] = v >> (8 * j);
	}
}

static void say(const char *key, const char *value)
{
	printf("VMMTEST vsock-%s=%s\n", key, value);
	fflush(stdout);
}

static void fail(const char *what)
{
	perror(what);
	say("error", what);
	exit(1);
}

static void exchange(int fd, uint64_t mib)
{
	struct md5 m;
	char hex[33], num[24];
	uint64_t total = 0;
	ssize_t n;

	md5_init(&m);
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		md5_add(&m, buf, n);
		total += n;
	}
	if (n < 0)
		fail("read");
	snprintf(num, sizeof(num), "%llu", (unsigned long long)total);
	say("rx-bytes", num);
	md5_hex(&m, hex);
	say("rx-md5", hex);

	md5_init(&m);
	for (uint64_t word = 0; word < (mib << 20) / 8; word += CHUNK / 8) {
		pattern(buf, CHUNK, word);
		md5_add(&m, buf, CHUNK);
		for (size_t done = 0; done < CHUNK; done += n)
			if ((n = write(fd, buf + done, CHUNK - done)) <= 0)
				fail("write");
	}
	snprintf(num, sizeof(num), "%llu", (unsigned long long)(mib << 20));
	say("tx-bytes", num);
	md5_hex(&m, hex);
	say("tx-md5", hex);
	/* Our EOF, then the peer's close: every byte was read there before we close. */
	if (shutdown(fd, SHUT_WR))
		fail("shutdown");
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		;
	close(fd);
	say("done", "ok");
}

int main(int argc, char **argv)
{
	struct sockaddr_vm sa = {.svm_family = AF_VSOCK};
	unsigned int cid = 0;
	char num[16];
	int fd, dev;

	if (argc == 4 && !strcmp(argv[1], "listen")) {
		sa.svm_cid = VMADDR_CID_ANY;
		sa.svm_port = strtoul(argv[2], NULL, 0);
	} else if (argc == 5 && !strcmp(argv[1], "connect")) {
		sa.svm_cid = strtoul(argv[2], NULL, 0);
		sa.svm_port = strtoul(argv[3], NULL, 0);
	} else {
		fprintf(stderr, "usage: vsock listen PORT MIB | vsock connect CID PORT MIB\n");
		return 2;
	}
	dev = open("/dev/vsock", O_RDONLY);
	if (dev < 0 || ioctl(dev, IOCTL_VM_SOCKETS_GET_LOCAL_CID, &cid))
		fail("/dev/vsock");
	close(dev);
	snprintf(num, sizeof(num), "%u", cid);
	say("cid", num);
	fd = socket(AF_VSOCK, SOCK_STREAM, 0);
	if (fd < 0)
		fail("socket");
	if (argc == 4) {
		int lfd = fd;

		if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 1))
			fail("listen");
		say("listening", argv[2]);
		fd = accept(lfd, NULL, NULL);
		if (fd < 0)
			fail("accept");
		close(lfd);
		exchange(fd, strtoull(argv[3], NULL, 0));
	} else {
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
			fail("connect");
		say("connected", argv[3]);
		exchange(fd, strtoull(argv[4], NULL, 0));
	}
	return 0;
}
