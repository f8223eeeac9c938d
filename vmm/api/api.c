/* The control socket's server: routing and JSON (api_handle, a pure function of the request), and
 * libmicrohttpd in its external-epoll mode on the api thread. libmicrohttpd parses HTTP (request
 * line, headers, chunked bodies, keep-alive) and bounds what one client may take (connections,
 * idle time, memory per connection); jansson parses and writes JSON, rejecting duplicate keys, and
 * unpacks a body in one call that also refuses unknown fields and wrong types. */
#include "api/api.h"
#include "log.h"
#include "sandbox.h"

#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---- replies ---- */

static char *dump(json_t *j)
{
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;

	json_decref(j);
	return s;
}

/* An error reply, as Cloud Hypervisor's: a JSON array of messages, the most general first. */
static int error(char **reply, int status, const char *what, const char *detail)
{
	/* A detail that is not UTF-8 (a path a client made up) cannot be a JSON string: left out. */
	*reply = dump(detail ? json_pack("[ss]", what, detail) : NULL);
	if (!*reply)
		*reply = dump(json_pack("[s]", what));
	return status;
}

static const char *const stat_names[BALLOON_NR_STATS] = {
	"swap_in",	"swap_out",	    "major_faults",    "minor_faults",	      "free_memory",
	"total_memory", "available_memory", "disk_caches",     "hugetlb_allocations", "hugetlb_failures",
};

static json_t *hex(uint64_t v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "0x%llx", (unsigned long long)v);
	return json_string(buf);
}

static json_t *config_json(const struct vm_config *c)
{
	json_t *disks = json_array(), *nets = json_array(), *j;

	for (unsigned i = 0; i < c->nr_disks; i++)
		json_array_append_new(disks, json_pack("{s:s, s:b, s:s*, s:i}", "path",
						       c->disks[i].path, "readonly",
						       c->disks[i].readonly, "serial",
						       c->disks[i].serial, "num_queues",
						       (int)c->disks[i].queues));
	for (unsigned i = 0; i < c->nr_nets; i++)
		json_array_append_new(nets, json_pack("{s:s, s:i, s:i}", "tap", c->nets[i].tap,
						      "num_queues", (int)c->nets[i].queues, "mtu",
						      (int)c->nets[i].mtu));
	j = json_pack("{s:{s:i}, s:{s:I}, s:{s:s, s:s*, s:s}, s:o, s:o}", "cpus", "boot_vcpus",
		      (int)c->cpus, "memory", "size", (json_int_t)c->memory, "payload", "kernel",
		      c->kernel, "initramfs", c->initrd, "cmdline", c->cmdline, "disks", disks,
		      "net", nets);
	if (j && c->balloon.enabled)
		json_object_set_new(j, "balloon",
				    json_pack("{s:I, s:b, s:b, s:i}", "size",
					      (json_int_t)c->balloon.size, "deflate_on_oom",
					      c->balloon.deflate_on_oom, "free_page_reporting",
					      c->balloon.free_page_reporting, "stats_period",
					      (int)c->balloon.stats_period));
	return j;
}

static int vm_info(struct api *a, char **reply)
{
	struct api_device dev[API_MAX_DEVICES];
	unsigned n = a->ops->devices(a->opaque, dev, API_MAX_DEVICES);
	struct balloon_info b;
	json_t *devices = json_object();
	uint64_t actual = a->ops->balloon(a->opaque, &b) == 0 ? b.actual : 0;

	for (unsigned i = 0; i < n; i++)
		json_object_set_new(devices, dev[i].name,
				    json_pack("{s:s, s:s, s:b, s:o, s:o, s:i, s:i}", "type",
					      dev[i].type, "transport", dev[i].transport, "legacy",
					      dev[i].legacy, "device_features",
					      hex(dev[i].device_features), "driver_features",
					      hex(dev[i].driver_features), "status", dev[i].status,
					      "queues", (int)dev[i].queues));
	*reply = dump(json_pack("{s:o, s:s, s:I, s:o}", "config", config_json(a->cfg), "state",
				a->ops->paused(a->opaque) ? "Paused" : "Running", "memory_actual_size",
				(json_int_t)(a->cfg->memory - actual), "devices", devices));
	return *reply ? 200 : error(reply, 500, "Out of memory", NULL);
}

static int vm_counters(struct api *a, char **reply)
{
	struct api_device dev[API_MAX_DEVICES];
	unsigned n = a->ops->devices(a->opaque, dev, API_MAX_DEVICES);
	struct balloon_info b;
	json_t *j = json_object();

	for (unsigned i = 0; i < n; i++)
		json_object_set_new(j, dev[i].name,
				    json_pack("{s:I, s:I}", "notifications", (json_int_t)dev[i].kicks,
					      "interrupts", (json_int_t)dev[i].interrupts));
	if (a->ops->balloon(a->opaque, &b) == 0) {
		json_t *d = json_object_get(j, "balloon0");

		if (d)
			json_object_update_new(
				d, json_pack("{s:I, s:I, s:I, s:I}", "inflated_pages",
					     (json_int_t)b.inflated, "deflated_pages",
					     (json_int_t)b.deflated, "reported_pages",
					     (json_int_t)b.reported, "refused_pfns", (json_int_t)b.refused));
	}
	*reply = dump(j);
	return *reply ? 200 : error(reply, 500, "Out of memory", NULL);
}

/* Firecracker's shape: the target and actual size always, each statistic the guest reports. */
static int balloon_statistics(struct api *a, char **reply)
{
	struct balloon_info b;
	json_t *j;

	if (a->ops->balloon(a->opaque, &b))
		return error(reply, 404, "No balloon device", "start vmm with --balloon");
	j = json_pack("{s:I, s:I, s:I, s:I}", "target_pages", (json_int_t)(b.target / 4096),
		      "actual_pages", (json_int_t)(b.actual / 4096), "target_mib",
		      (json_int_t)(b.target >> 20), "actual_mib", (json_int_t)(b.actual >> 20));
	for (unsigned t = 0; j && t < BALLOON_NR_STATS; t++) {
		if (b.stats.have >> t & 1)
			json_object_set_new(j, stat_names[t], json_integer((json_int_t)b.stats.val[t]));
	}
	*reply = dump(j);
	return *reply ? 200 : error(reply, 500, "Out of memory", NULL);
}

/* {"desired_balloon": bytes}; Cloud Hypervisor's other fields are refused by name. */
static int vm_resize(struct api *a, const char *body, size_t len, char **reply)
{
	json_int_t balloon = -1, vcpus = -1, ram = -1;
	json_error_t err;
	json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &err);
	char msg[200];
	int ret;

	if (!j)
		return error(reply, 400, "Malformed JSON", err.text);
	ret = json_unpack_ex(j, &err, JSON_STRICT, "{s?I, s?I, s?I}", "desired_balloon", &balloon,
			     "desired_vcpus", &vcpus, "desired_ram", &ram);
	json_decref(j);
	if (ret)
		return error(reply, 400, "Bad request body", err.text);
	if (vcpus != -1 || ram != -1)
		return error(reply, 400, "Not supported", "only desired_balloon can change");
	if (balloon < 0)
		return error(reply, 400, "Bad request body", "desired_balloon: bytes, 0 or more");
	if ((uint64_t)balloon > a->cfg->memory) {
		snprintf(msg, sizeof(msg), "desired_balloon %lld is more than the guest's %llu bytes",
			 (long long)balloon, (unsigned long long)a->cfg->memory);
		return error(reply, 400, "Bad request body", msg);
	}
	if (a->ops->resize_balloon(a->opaque, (uint64_t)balloon))
		return error(reply, 404, "No balloon device", "start vmm with --balloon");
	return 204;
}

/* vm.pause and vm.resume: 204, or 409 when the VM is not in the state they change. */
static int state_change(char **reply, int ret, const char *busy)
{
	if (ret == -EBUSY)
		return error(reply, 409, "Conflict", busy);
	if (ret == -ESHUTDOWN)
		return error(reply, 409, "Conflict", "the VM is stopping");
	return ret ? error(reply, 500, "Internal Server Error", strerror(-ret)) : 204;
}

enum method { GET, PUT };

static const struct route {
	const char *path;
	enum method method;
	bool body; /* takes one */
} routes[] = {
	{ "vmm.ping", GET, false },	      { "vm.info", GET, false },
	{ "vm.counters", GET, false },	      { "balloon.statistics", GET, false },
	{ "vm.resize", PUT, true },	      { "vm.shutdown", PUT, false },
	{ "vm.pause", PUT, false },	      { "vm.resume", PUT, false },
	{ "vm.reboot", PUT, false },	      { "vm.power-button", PUT, false },
};

int api_handle(struct api *a, const char *method, const char *url, const char *body, size_t len,
	       char **reply, const char **allow)
{
	static const char prefix[] = "/api/v1/";
	const struct route *r = NULL;

	*reply = NULL;
	*allow = NULL;
	for (unsigned i = 0; i < ARRAY_SIZE(routes) && !strncmp(url, prefix, sizeof(prefix) - 1);
	     i++) {
		if (!strcmp(url + sizeof(prefix) - 1, routes[i].path))
			r = &routes[i];
	}
	if (!r)
		return error(reply, 404, "Not Found", url);
	if (strcmp(method, r->method == GET ? "GET" : "PUT")) {
		*allow = r->method == GET ? "GET" : "PUT";
		return error(reply, 405, "Method Not Allowed", *allow);
	}
	if (!r->body && len)
		return error(reply, 400, "Bad request body", "this request takes none");
	switch (r - routes) {
	case 0:
		*reply = dump(json_pack("{s:s, s:s, s:i, s:[s]}", "build_version", VMM_VERSION,
					"version", VMM_VERSION, "pid", (int)a->pid, "features",
					"balloon"));
		return *reply ? 200 : error(reply, 500, "Out of memory", NULL);
	case 1:
		return vm_info(a, reply);
	case 2:
		return vm_counters(a, reply);
	case 3:
		return balloon_statistics(a, reply);
	case 4:
		return vm_resize(a, body, len, reply);
	case 5:
		a->then = API_SHUTDOWN;
		return 204;
	case 6:
		return state_change(reply, a->ops->pause(a->opaque), "already paused");
	case 7:
		return state_change(reply, a->ops->resume(a->opaque), "not paused");
	case 8:
		if (a->ops->paused(a->opaque))
			return error(reply, 409, "Conflict", "the VM is paused: resume it first");
		a->then = API_REBOOT;
		return 204;
	default:
		if (a->ops->paused(a->opaque))
			return error(reply, 409, "Conflict", "the VM is paused: resume it first");
		a->ops->power_button(a->opaque);
		return 204;
	}
}

/* ---- HTTP ---- */

struct request {
	char body[API_MAX_BODY];
	size_t len;
	bool too_big;
};

static enum MHD_Result respond(struct MHD_Connection *c, int status, char *reply,
			       const char *allow)
{
	struct MHD_Response *r =
		reply ? MHD_create_response_from_buffer(strlen(reply), reply, MHD_RESPMEM_MUST_FREE)
		      : MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ret;

	if (!r) {
		free(reply);
		return MHD_NO;
	}
	if (reply)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	if (allow)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
	ret = MHD_queue_response(c, (unsigned)status, r);
	MHD_destroy_response(r);
	return ret;
}

/* Called once with the headers, once per piece of body, and once more at the end (7.3 of the
 * libmicrohttpd manual). A body over API_MAX_BODY is 413: at once when Content-Length says so,
 * else at the end (a reply may not be queued while the body comes). */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *data,
				  size_t *size, void **ctx)
{
	struct api *a = cls;
	struct request *r = *ctx;
	const char *allow;
	char *reply;
	int status;

	if (!r) {
		const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
							     MHD_HTTP_HEADER_CONTENT_LENGTH);

		if (!(r = calloc(1, sizeof(*r))))
			return MHD_NO;
		*ctx = r;
		if (cl && strtoull(cl, NULL, 10) > API_MAX_BODY) {
			status = error(&reply, 413, "Payload Too Large", "4096 bytes at most");
			return respond(c, status, reply, NULL);
		}
		return MHD_YES;
	}
	if (*size) {
		if (*size > sizeof(r->body) - r->len)
			r->too_big = true;
		else
			memcpy(r->body + r->len, data, *size);
		if (!r->too_big)
			r->len += *size;
		*size = 0;
		return MHD_YES;
	}
	if (r->too_big)
		status = error(&reply, 413, "Payload Too Large", "4096 bytes at most");
	else
		status = api_handle(a, method, url, r->body, r->len, &reply, &allow);
	return respond(c, status, reply, r->too_big ? NULL : allow);
}

/* The reply has gone (or the client has): a vm.shutdown takes effect now, so its 204 reached the
 * client first. */
static void on_completed(void *cls, struct MHD_Connection *c, void **ctx,
			 enum MHD_RequestTerminationCode why)
{
	struct api *a = cls;

	free(*ctx);
	*ctx = NULL;
	if (a->then != API_RUN) {
		a->ops->stop(a->opaque, a->then == API_REBOOT);
		a->then = API_RUN;
	}
}

/* libmicrohttpd's own messages (a client that hung up, a malformed request line): at debug level,
 * so a client cannot fill the log. */
__attribute__((format(printf, 2, 0))) static void on_log(void *cls, const char *fmt, va_list ap)
{
	char buf[256];

	if (log_get_level() < LOG_DEBUG)
		return;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	buf[strcspn(buf, "\n")] = '\0';
	log_debug("api: %s", buf);
}

/* A socket at path that answers is another vmm's; one that refuses is stale. */
static int claim_path(const char *path, struct sockaddr_un *sun)
{
	struct stat st;
	int probe, ret;

	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		log_error("--api-socket %s: %s", path, strerror(errno));
		return -errno;
	}
	if (!S_ISSOCK(st.st_mode)) {
		log_error("--api-socket %s: exists and is not a socket", path);
		return -EEXIST;
	}
	probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe < 0)
		return -errno;
	ret = connect(probe, (struct sockaddr *)sun, sizeof(*sun)) < 0 ? errno : 0;
	close(probe);
	if (ret == 0) {
		log_error("--api-socket %s: another process is serving it", path);
		return -EADDRINUSE;
	}
	if (ret != ECONNREFUSED) { /* not plainly stale (another user's, say): left alone */
		log_error("--api-socket %s: %s", path, strerror(ret));
		return -ret;
	}
	if (unlink(path) < 0) {
		ret = -errno;
		log_error("--api-socket %s: cannot replace the stale socket: %s", path, strerror(errno));
		return ret;
	}
	return 0;
}

int api_open(struct api *a, const char *path, const struct vm_config *cfg,
	     const struct api_ops *ops, void *opaque)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	const union MHD_DaemonInfo *info;
	struct epoll_event ev = { .events = EPOLLIN };
	int fd = -1, ret;

	*a = (struct api){ .ops = ops, .opaque = opaque, .cfg = cfg, .epfd = -1, .stop_fd = -1 };
	a->pid = getpid();
	if (strlen(path) >= sizeof(sun.sun_path)) {
		log_error("--api-socket %s: too long for a unix socket: at most %zu bytes", path,
			  sizeof(sun.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	memcpy(sun.sun_path, path, strlen(path));
	if ((ret = claim_path(path, &sun)))
		return ret;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	/* The file takes the socket's mode: 0600 before bind, so no one else ever may connect. */
	if (fd < 0 || fchmod(fd, 0600) < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    listen(fd, 16) < 0) {
		ret = -errno;
		log_error("--api-socket %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return ret;
	}
	if (!(a->path = strdup(path))) {
		close(fd);
		unlink(path);
		return -ENOMEM;
	}
	json_object_seed(0); /* now: jansson would read /dev/urandom at its first object */
	a->mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request, a,
				  MHD_OPTION_EXTERNAL_LOGGER, on_log, a, MHD_OPTION_LISTEN_SOCKET,
				  (MHD_socket)fd, MHD_OPTION_CONNECTION_LIMIT,
				  (unsigned)API_MAX_CLIENTS, MHD_OPTION_CONNECTION_TIMEOUT,
				  (unsigned)API_IDLE_S, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
				  (size_t)16384, MHD_OPTION_NOTIFY_COMPLETED, on_completed, a,
				  MHD_OPTION_END);
	if (!a->mhd) {
		log_error("--api-socket %s: cannot start the HTTP server", path);
		close(fd);
		api_close(a);
		return -EIO;
	}
	/* From here the server owns fd, and closes it when it stops. */
	info = MHD_get_daemon_info(a->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	a->epfd = epoll_create1(EPOLL_CLOEXEC);
	a->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!info || a->epfd < 0 || a->stop_fd < 0 ||
	    epoll_ctl(a->epfd, EPOLL_CTL_ADD, a->stop_fd, &ev) < 0 ||
	    (ev.data.fd = 1, epoll_ctl(a->epfd, EPOLL_CTL_ADD, info->epoll_fd, &ev)) < 0) {
		ret = -errno;
		log_error("--api-socket %s: %s", path, strerror(errno));
		api_close(a);
		return ret ? ret : -EIO;
	}
	return 0;
}

static unsigned clients(struct api *a)
{
	const union MHD_DaemonInfo *i = MHD_get_daemon_info(a->mhd, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);

	return i ? i->num_connections : 0;
}

static void *api_thread(void *arg)
{
	struct api *a = arg;

	pthread_setname_np(pthread_self(), "api");
	sandbox_enter(SANDBOX_API, "api");
	for (;;) {
		MHD_UNSIGNED_LONG_LONG ms;
		struct epoll_event ev[2];
		int wait = MHD_get_timeout(a->mhd, &ms) == MHD_YES ? (ms > 60000 ? 60000 : (int)ms)
								    : -1;
		int n = epoll_wait(a->epfd, ev, 2, wait);
		bool stop = false;

		for (int i = 0; i < n; i++)
			stop |= ev[i].data.fd == 0;
		if (stop)
			break;
		unsigned before = clients(a);

		MHD_run(a->mhd); /* accepts, reads, answers, times out idle clients */
		/* At API_MAX_CLIENTS the server stops watching the listening socket, and takes it
		 * back only at its next run: make that run now that clients have gone, or a client
		 * waiting in the backlog would wait for ever. */
		if (clients(a) < before)
			MHD_run(a->mhd);
	}
	/* Here, under this thread's filter, which has what closing the clients takes. */
	MHD_stop_daemon(a->mhd);
	a->mhd = NULL;
	return NULL;
}

int api_start(struct api *a)
{
	sigset_t all, old;
	int ret;

	/* Signals belong to main and the vCPUs (as for the I/O threads). */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = -pthread_create(&a->thread, NULL, api_thread, a);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!ret)
		a->started = true;
	return ret;
}

void api_close(struct api *a)
{
	uint64_t one = 1;

	if (a->started) {
		if (write(a->stop_fd, &one, sizeof(one)) < 0)
			log_warn("api: stop: %s", strerror(errno));
		pthread_join(a->thread, NULL);
		a->started = false;
	}
	if (a->mhd) /* the thread never ran: no client was ever taken */
		MHD_stop_daemon(a->mhd); /* closes the listening socket */
	a->mhd = NULL;
	if (a->epfd >= 0)
		close(a->epfd);
	if (a->stop_fd >= 0)
		close(a->stop_fd);
	a->epfd = a->stop_fd = -1;
	if (a->path)
		unlink(a->path);
	free(a->path);
	a->path = NULL;
}
