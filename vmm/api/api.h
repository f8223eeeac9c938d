/* The control socket (docs/api.md): HTTP/1.1 with JSON bodies on a unix socket, as Cloud
 * Hypervisor's API, served by libmicrohttpd on a thread of its own ("api", sandboxed like the
 * others). It reaches the VM only through struct api_ops. */
#ifndef VMM_API_H
#define VMM_API_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "virtio/balloon.h"

#define API_MAX_BODY    4096 /* bytes of a request body; more is 413 */
#define API_MAX_CLIENTS 8    /* connections at once; more wait in the listen backlog */
#define API_IDLE_S      5    /* a connection that sends nothing for this long is closed */
#define API_MAX_DEVICES 32

/* One virtio device, as vm.info and vm.counters show it. */
struct api_device {
	char name[16];         /* rng0, disk0, ... */
	const char *type;      /* "rng", "blk", ... */
	const char *transport; /* "pci" or "mmio" */
	bool legacy;
	uint64_t device_features, driver_features;
	uint8_t status;
	unsigned queues;
	uint64_t kicks, interrupts; /* summed over its queues */
};

/* What the API may ask of the VM; called on the api thread. */
struct api_ops {
	unsigned (*devices)(void *opaque, struct api_device *out, unsigned max);
	int (*balloon)(void *opaque, struct balloon_info *out); /* -ENODEV without one */
	int (*resize_balloon)(void *opaque, uint64_t bytes);   /* -ENODEV without one */
	/* vm.pause and vm.resume: 0, -EBUSY when already paused (not paused), -ESHUTDOWN. */
	int (*pause)(void *opaque);
	int (*resume)(void *opaque);
	bool (*paused)(void *opaque);
	void (*power_button)(void *opaque);
	/* vm.shutdown (reboot false) and vm.reboot, once the reply has gone out. */
	void (*stop)(void *opaque, bool reboot);
};

struct api {
	const struct api_ops *ops;
	void *opaque;
	const struct vm_config *cfg;
	struct MHD_Daemon *mhd;
	int epfd, stop_fd;
	pthread_t thread;
	bool started;
	char *path;
	pid_t pid;
	enum { API_RUN, API_SHUTDOWN, API_REBOOT } then; /* what to do once the reply is out */
};

/* Setup, before the sandbox: the socket at path (mode 0600; a stale one replaced, a live one or
 * another kind of file refused, exit 2), the HTTP server on it. 0 or -errno, with a message. */
int api_open(struct api *a, const char *path, const struct vm_config *cfg,
	     const struct api_ops *ops, void *opaque);
/* The api thread. 0 or -errno. */
int api_start(struct api *a);
/* Stops and joins the thread, closes the server, removes the socket. Safe to call twice and on a
 * zeroed api. */
void api_close(struct api *a);

/* One request, the whole of it (what the thread does for each; tests and fuzzing call it
 * directly): the HTTP status, the JSON reply in *reply (malloc'd, NULL for none) and, for 405, the
 * methods allowed in *allow. */
int api_handle(struct api *a, const char *method, const char *url, const char *body, size_t len,
	       char **reply, const char **allow);

/* `vmm ctl PATH COMMAND [ARG]`: the client. Returns the exit status (docs/api.md). */
int api_client(int argc, char **argv);

#endif
