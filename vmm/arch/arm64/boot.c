/* The arm64 boot path (Documentation/arch/arm64/booting.rst): the Image at a 2 MiB boundary plus
 * its text_offset, a 2 MiB block above it kept for the device tree, and the initrd above that
 * (image.c decides where). The device tree itself is written once KVM has said which interrupt
 * controller the VM has (arch_vm_finish, machine.c); the command line and the initrd's place go
 * there. */
#include "arch.h"
#include "arch/arm64/image.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CMDLINE_MAX 2048 /* arm64's COMMAND_LINE_SIZE, with the NUL */

int boot_load(struct guest_mem *m, const struct boot_args *a, struct boot_info *out)
{
	uint64_t ram = m->r[0].gpa, ram_size = m->r[0].size;
	struct boot_file k = { 0 };
	struct arm64_image img;
	struct arm64_layout l;
	size_t initrd_size = 0, cmdlen = strlen(a->cmdline);
	int fd = -1, ret;

	memset(out, 0, sizeof(*out));
	if (cmdlen >= CMDLINE_MAX) {
		log_error("--cmdline: %zu bytes, but an arm64 kernel accepts at most %u", cmdlen,
			  CMDLINE_MAX - 1);
		return -E2BIG;
	}
	if ((ret = boot_read_file(a->kernel_what, a->kernel, ram_size, &k)))
		return ret;
	if ((ret = arm64_image_parse(a->kernel_what, k.data, k.size, k.size, &img)))
		goto out;
	if (a->initrd && (fd = boot_open(a->initrd_what, a->initrd, ram_size, &initrd_size)) < 0) {
		ret = fd;
		goto out;
	}
	if (a->initrd && !initrd_size) {
		log_error("%s: empty", a->initrd_what);
		ret = -EINVAL;
		goto out;
	}
	struct arm64_place p = { ram, ram_size, initrd_size, a->kernel_what, a->initrd_what };
	if ((ret = arm64_image_place(&img, &p, &l)) || (ret = boot_put(m, l.kernel, k.data, k.size)))
		goto out;
	if (fd >= 0) {
		void *dst = gmem_ptr(m, l.initrd, initrd_size);

		ret = dst ? boot_read(a->initrd_what, fd, dst, initrd_size) : -ERANGE;
		fd = -1; /* boot_read closed it */
		if (ret)
			goto out;
	}
	out->entry = l.kernel;
	out->arg = l.dtb;
	out->written_end = l.dtb + ARM64_DTB_MAX;
	out->initrd_gpa = initrd_size ? l.initrd : 0;
	out->initrd_size = initrd_size;
out:
	if (fd >= 0)
		close(fd);
	free(k.data);
	return ret;
}
