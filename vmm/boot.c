/* What every architecture's boot path shares: reading the kernel and initrd files (bounded by
 * what guest RAM can hold, one message naming the file on any failure), copying into guest
 * memory through its one door, and the copy a restart boots again from. */
#include "boot.h"
#include "arch.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Opens a regular file no larger than max (a larger one could never fit the guest): the fd, or a
 * negative errno after one message that `what` begins ("--kernel PATH"). */
int boot_open(const char *what, const char *path, uint64_t max, size_t *size)
{
	struct stat st;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		log_error("%s: %s", what, strerror(errno));
		return ret;
	}
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		log_error("%s: %s", what, strerror(errno));
	} else if (!S_ISREG(st.st_mode)) {
		log_error("%s: not a regular file", what);
		ret = -EINVAL;
	} else if ((uint64_t)st.st_size > max) {
		log_error("%s: %lld bytes do not fit in guest memory (raise --memory)", what,
			  (long long)st.st_size);
		ret = -EFBIG;
	} else {
		*size = (size_t)st.st_size;
		return fd;
	}
	close(fd);
	return ret;
}

/* Reads exactly size bytes into dst, and closes fd. */
int boot_read(const char *what, int fd, void *dst, size_t size)
{
	size_t done = 0;
	int ret = 0;

	while (done < size) {
		ssize_t n = read(fd, (uint8_t *)dst + done, size - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = n < 0 ? -errno : -EIO;
			log_error("%s: read failed: %s", what,
				  n < 0 ? strerror(errno) : "file shrank");
			break;
		}
		done += (size_t)n;
	}
	close(fd);
	return ret;
}

/* Reads a whole image into a buffer the caller frees (the kernel: its header decides where it
 * goes). */
int boot_read_file(const char *what, const char *path, uint64_t max, struct boot_file *img)
{
	int fd = boot_open(what, path, max, &img->size), ret;

	img->data = NULL;
	if (fd < 0)
		return fd;
	img->data = malloc(img->size ? img->size : 1);
	if (!img->data) {
		close(fd);
		log_error("%s: out of memory", what);
		return -ENOMEM;
	}
	if ((ret = boot_read(what, fd, img->data, img->size))) {
		free(img->data);
		img->data = NULL;
	}
	return ret;
}

/* Copies into guest memory through the checked door; the caller has already decided the range. */
int boot_put(struct guest_mem *m, uint64_t gpa, const void *src, uint64_t len)
{
	void *dst = gmem_ptr(m, gpa, len);

	if (!dst)
		return -ERANGE;
	memcpy(dst, src, len);
	return 0;
}

int boot_keep(const struct guest_mem *m, const struct boot_info *info, struct boot_image *img)
{
	const void *low = gmem_ptr(m, RAM_BASE, info->written_end - RAM_BASE);
	const void *initrd = info->initrd_size ? gmem_ptr(m, info->initrd_gpa, info->initrd_size)
					       : NULL;

	memset(img, 0, sizeof(*img));
	if (!low || (info->initrd_size && !initrd))
		return -ERANGE;
	img->low_len = info->written_end - RAM_BASE;
	img->initrd_gpa = info->initrd_gpa;
	img->initrd_size = info->initrd_size;
	img->low = malloc(img->low_len);
	img->initrd = img->initrd_size ? malloc(img->initrd_size) : NULL;
	if (!img->low || (img->initrd_size && !img->initrd)) {
		boot_image_free(img);
		return -ENOMEM;
	}
	memcpy(img->low, low, img->low_len);
	if (img->initrd_size)
		memcpy(img->initrd, initrd, img->initrd_size);
	return 0;
}

void boot_reload(struct guest_mem *m, const struct boot_image *img)
{
	gmem_clear(m);
	boot_put(m, RAM_BASE, img->low, img->low_len);
	if (img->initrd_size)
		boot_put(m, img->initrd_gpa, img->initrd, img->initrd_size);
}

void boot_image_free(struct boot_image *img)
{
	free(img->low);
	free(img->initrd);
	memset(img, 0, sizeof(*img));
}
