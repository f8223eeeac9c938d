/* Replays libFuzzer inputs without libFuzzer: calls the target's LLVMFuzzerInitialize if it has
 * one, as libFuzzer does, then feeds each file named on the command line to its
 * LLVMFuzzerTestOneInput once, from a heap copy of exactly its size so that ASan sees any read
 * past its end. Built with $(CC) and the unit tests' sanitizers, it lets `make check-unit` run the
 * committed corpus on machines without clang. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Weak, as libFuzzer declares it: NULL in a target without one. */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

int main(int argc, char **argv)
{
	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++) {
		FILE *f = fopen(argv[i], "rb");
		uint8_t *buf = NULL;
		long len;

		if (!f || fseek(f, 0, SEEK_END) || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) ||
		    !(buf = malloc(len ? len : 1)) || fread(buf, 1, len, f) != (size_t)len) {
			fprintf(stderr, "replay: cannot read %s\n", argv[i]);
			return 1;
		}
		fclose(f);
		LLVMFuzzerTestOneInput(buf, len);
		free(buf);
	}
	printf("replay: %d inputs ran clean\n", argc - 1);
	return 0;
}
