/* outb PORT VALUE: writes one byte to an I/O port. The test guests use it to reach the exit
 * device on kernels built without /dev/port (Debian's cloud kernel is one). */
#include <stdio.h>
#include <stdlib.h>
#include <sys/io.h>

int main(int argc, char **argv)
{
	unsigned long port, value;

	if (argc != 3) {
		fprintf(stderr, "usage: outb PORT VALUE\n");
		return 2;
	}
	port = strtoul(argv[1], NULL, 0);
	value = strtoul(argv[2], NULL, 0);
	if (port > 0xffff || value > 0xff || ioperm(port, 1, 1) < 0) {
		perror("outb");
		return 1;
	}
	outb((unsigned char)value, (unsigned short)port);
	return 0;
}
