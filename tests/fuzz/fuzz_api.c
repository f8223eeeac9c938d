/* libFuzzer target for the control socket's request handling (api/api.c, api_handle): the method,
 * the path and the body of a request as a client sends them, with a VM of fake devices and a
 * balloon behind. Input: the method, a NUL, the path, a NUL, then the body (cut anywhere: a
 * missing part is empty). It checks that the status is one of those docs/api.md lists, that a
 * reply is always JSON (an array of messages for an error), that 405 comes with its Allow, that
 * the balloon's target changes only on a 204 to vm.resize and never beyond the guest's memory, and
 * that a stop is only asked for by vm.shutdown and vm.reboot, and the VM's state changes only with
 * a 204. */
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "log.h"
#include "fuzz.h"

static uint64_t target;
static bool resized;

static unsigned fake_devices(void *opaque, struct api_device *out, unsigned max)
{
	out[0] = (struct api_device){ .name = "balloon0", .type = "balloon", .transport = "pci",
				      .queues = 5 };
	return 1;
}

static int fake_balloon(void *opaque, struct balloon_info *out)
{
	*out = (struct balloon_info){ .target = target, .actual = target };
	out->stats.have = 0x3ff;
	return 0;
}

static int fake_resize(void *opaque, uint64_t bytes)
{
	target = bytes;
	resized = true;
	return 0;
}

/* The VM's state: paused or not, as pause and resume leave it (one per input). */
static bool paused, changed;

static int fake_pause(void *opaque)
{
	if (paused)
		return -EBUSY;
	paused = changed = true;
	return 0;
}

static int fake_resume(void *opaque)
{
	if (!paused)
		return -EBUSY;
	paused = false;
	changed = true;
	return 0;
}

static bool fake_paused(void *opaque)
{
	return paused;
}

static void fake_power_button(void *opaque)
{
	changed = true;
}

static void fake_stop(void *opaque, bool reboot)
{
}

static const struct api_ops ops = { fake_devices, fake_balloon,	 fake_resize,	   fake_pause,
				    fake_resume,  fake_paused,	 fake_power_button, fake_stop };

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_set_level(LOG_ERROR);
	json_object_seed(1);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int statuses[] = { 200, 204, 400, 404, 405, 409, 413, 500 };
	struct vm_config cfg = { .kernel = "k", .cmdline = "c", .cpus = 1, .memory = 1 << 30 };
	struct api a = { .ops = &ops, .cfg = &cfg, .epfd = -1, .stop_fd = -1 };
	char *copy = malloc(size + 2), *method, *url, *body, *reply;
	const char *allow;
	size_t len;
	int status;
	bool known = false;

	if (!copy)
		return 0;
	memcpy(copy, data, size);
	copy[size] = copy[size + 1] = '\0';
	method = copy;
	url = method + strlen(method) + 1;
	if (url > copy + size)
		url = copy + size + 1;
	body = url + strlen(url) + 1;
	len = body <= copy + size ? (size_t)(copy + size - body) : 0;
	if (body > copy + size)
		body = copy + size + 1;
	resized = changed = false;
	target = 0;
	paused = size & 1; /* either state, whatever the request */
	status = api_handle(&a, method, url, body, len, &reply, &allow);
	for (unsigned i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
		known |= status == statuses[i];
	check(known);
	check((status == 405) == (allow != NULL));
	check(status == 204 || reply);
	if (reply) {
		json_t *j = json_loads(reply, 0, NULL);

		check(j != NULL);
		check(status < 400 || json_is_array(j));
		json_decref(j);
	}
	check(!resized || (status == 204 && !strcmp(url, "/api/v1/vm.resize")));
	check(target <= cfg.memory);
	check(a.then == API_RUN || (status == 204 && (!strcmp(url, "/api/v1/vm.shutdown") ||
						      !strcmp(url, "/api/v1/vm.reboot"))));
	check(!changed || status == 204);
	free(reply);
	free(copy);
	return 0;
}
