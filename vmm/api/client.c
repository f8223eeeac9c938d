/* `vmm ctl PATH COMMAND [ARG]`: one request to a control socket, its reply on stdout. Exit status:
 * 0 the request succeeded (2xx), 1 the server refused it (its message on stderr) or could not be
 * reached, 2 bad usage. */
#include "api/api.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define CLIENT_TIMEOUT_MS 30000
#define CLIENT_MAX_REPLY  (1 << 20)

static const struct command {
	const char *name, *method, *path;
	bool arg; /* takes ARG */
} commands[] = {
	{ "ping", "GET", "vmm.ping", false },
	{ "info", "GET", "vm.info", false },
	{ "counters", "GET", "vm.counters", false },
	{ "balloon-stats", "GET", "balloon.statistics", false },
	{ "resize", "PUT", "vm.resize", true },
	{ "shutdown", "PUT", "vm.shutdown", false },
	{ "pause", "PUT", "vm.pause", false },
	{ "resume", "PUT", "vm.resume", false },
	{ "reboot", "PUT", "vm.reboot", false },
	{ "power-button", "PUT", "vm.power-button", false },
};

static int usage(void)
{
	fputs("Usage: vmm ctl SOCKET COMMAND [ARG]\n"
	      "Commands: ping, info, counters, balloon-stats, resize BALLOON-SIZE,\n"
	      "          shutdown, pause, resume, reboot, power-button\n"
	      "Exit status: 0 done, 1 refused or unreachable, 2 bad usage (docs/api.md)\n",
	      stderr);
	return 2;
}

/* Writes all of buf; false on error. */
static bool send_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n <= 0)
			return false;
		buf += n;
		len -= (size_t)n;
	}
	return true;
}

int api_client(int argc, char **argv)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	const struct command *c = NULL;
	char body[64] = "", *reply = NULL, *text;
	size_t len = 0;
	int fd, status = 0;
	uint64_t size;

	if (argc < 2 || strlen(argv[0]) >= sizeof(sun.sun_path))
		return usage();
	for (unsigned i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (!strcmp(argv[1], commands[i].name))
			c = &commands[i];
	}
	if (!c || argc != 2 + c->arg)
		return usage();
	if (c->arg) {
		if (config_parse_size(argv[2], &size)) {
			fprintf(stderr, "vmm ctl: %s: not a size (bytes, or K, M, G, T)\n", argv[2]);
			return 2;
		}
		snprintf(body, sizeof(body), "{\"desired_balloon\":%llu}", (unsigned long long)size);
	}
	memcpy(sun.sun_path, argv[0], strlen(argv[0]));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		fprintf(stderr, "vmm ctl: %s: %s\n", argv[0], strerror(errno));
		if (fd >= 0)
			close(fd);
		return 1;
	}
	char req[512];
	int n = snprintf(req, sizeof(req),
			 "%s /api/v1/%s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
			 "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
			 c->method, c->path, strlen(body), body);
	if (!send_all(fd, req, (size_t)n) || !(reply = malloc(CLIENT_MAX_REPLY + 1))) {
		fprintf(stderr, "vmm ctl: %s: %s\n", argv[0], strerror(errno));
		close(fd);
		free(reply);
		return 1;
	}
	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		ssize_t got;

		if (poll(&p, 1, CLIENT_TIMEOUT_MS) <= 0 ||
		    (got = recv(fd, reply + len, CLIENT_MAX_REPLY - len, 0)) < 0) {
			fprintf(stderr, "vmm ctl: %s: no answer\n", argv[0]);
			break;
		}
		if (got == 0 || (len += (size_t)got) == CLIENT_MAX_REPLY)
			break;
	}
	close(fd);
	reply[len] = '\0';
	text = strstr(reply, "\r\n\r\n");
	if (sscanf(reply, "HTTP/1.%*d %d", &status) != 1 || !text) {
		fprintf(stderr, "vmm ctl: %s: not an HTTP reply\n", argv[0]);
		free(reply);
		return 1;
	}
	text += 4;
	if (status >= 200 && status < 300) {
		if (*text)
			printf("%s\n", text);
	} else {
		fprintf(stderr, "vmm ctl: %s: %d %s\n", c->name, status, text);
	}
	free(reply);
	return status >= 200 && status < 300 ? 0 : 1;
}
