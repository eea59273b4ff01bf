// SPDX-License-Identifier: GPL-2.0
/*
 * The lab guest's init (PID 1): what virtme-ng-init does for wqkit, without udev.
 *
 * virtme-ng's initramfs mounts the host's root over 9p and executes the first
 * init= on the kernel command line, which the lab sets to this program (built
 * static by wqkit.lab.guest_init, kept in wqkit's cache), ahead of virtme-ng's
 * own. virtme-ng-init starts udevd whenever the guest has one and waits for its
 * coldplug to settle: 60 % of a TCG boot (9 s of 15), only to name the
 * script's I/O ports under /dev/virtio-ports. This init reads the ports' names
 * from sysfs instead, then does the rest of virtme-ng-init's set-up that a lab
 * session uses, with system calls: kernel file systems, the writable overlays
 * on the read-only root, the host directories virtme-ng exports
 * (virtme_initmountN), the modules of the kernel booted (and the few that udev
 * would have loaded and the lab needs: wqkit_modules=), and the script
 * (virtme.exec) on the ports. It reaps orphans while the script runs, and
 * powers the guest off when it ends.
 *
 * It is C, not Python: a Python interpreter started over 9p under TCG took
 * 1.6-2 s before its first line ran; this program runs 0.07 s after the switch
 * to the real root. It reads only what virtme-ng 1.42 puts on the command line
 * and in the environment (virtme_* variables) and wqkit's own variables
 * (wqkit_private_dirs=, wqkit_modules=), as wqkit.lab.vm writes them. Each step
 * is logged to the kernel log ("wqkit-init:"), so the console's timestamps give
 * the boot's timeline.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

struct kernel_mount {
	const char *source, *target, *type;
	unsigned long flags;
	const char *data;
};

/* In order: what a lab guest mounts itself. */
static const struct kernel_mount kernel_mounts[] = {
	{ "proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "" },
	{ "sys", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "" },
	{ "run", "/run", "tmpfs", 0, "mode=0755" },
	{ "devtmpfs", "/dev", "devtmpfs", MS_NOSUID | MS_NOEXEC, "" },
	{ "debugfs", "/sys/kernel/debug", "debugfs", 0, "" },
	{ "tracefs", "/sys/kernel/tracing", "tracefs", 0, "" },
	{ "cgroup2", "/sys/fs/cgroup", "cgroup2", 0, "" },
	{ "devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "" },
	{ "tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "" },
};

/*
 * Mounted by a child while the rest goes on: on a kernel with CONFIG_BPF_PRELOAD the
 * mount asks for the bpf_preload module through a modprobe helper (half a second under TCG).
 */
static const struct kernel_mount bpf_mount = { "bpf", "/sys/fs/bpf", "bpf", 0, "" };

/* virtme-ng's 9p options for the directories it exports. */
#define NINEP_OPTIONS "version=9p2000.L,trans=virtio,access=any,msize=524288"
#define DEFAULT_PATH "/bin:/sbin:/usr/bin:/usr/sbin:/usr/local/bin"
#define PORTS "/sys/class/virtio-ports"
/*
 * Made when the set-up is complete. The script starts before that (its Python
 * interpreter's start over 9p, the longest step of a boot, overlaps the modules
 * loading); the lab's agent waits for this file before it answers
 * (WQKIT_INIT_DONE in its environment).
 */
#define INIT_DONE "/run/wqkit-init.done"

/* Script I/O ports: virtio port name and the descriptor it becomes in the script. */
static const struct {
	const char *name;
	int fd;
} script_ports[] = { { "virtme.stdin", 0 }, { "virtme.stdout", 1 }, { "virtme.stderr", 2 } };

static void log_line(const char *fmt, ...)
{
	char line[1024];
	int len = snprintf(line, sizeof(line), "<6>wqkit-init: ");
	va_list ap;
	int fd;

	va_start(ap, fmt);
	len += vsnprintf(line + len, sizeof(line) - len - 1, fmt, ap);
	va_end(ap);
	if (len > (int)sizeof(line) - 2)
		len = sizeof(line) - 2;
	line[len++] = '\n';
	fd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		fd = dup(2);
		if (fd < 0)
			return;
	}
	if (write(fd, line, len) < 0)
		len = 0;
	close(fd);
}

static void make_dirs(const char *path)
{
	char buf[4096];
	char *p;

	snprintf(buf, sizeof(buf), "%s", path);
	for (p = buf + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			mkdir(buf, 0755);
			*p = '/';
		}
	}
	mkdir(buf, 0755);
}

/* mount(2) on a directory made if missing; a failure is logged, not fatal. */
static int do_mount(const char *source, const char *target, const char *type, unsigned long flags,
		    const char *data)
{
	make_dirs(target);
	if (mount(source, target, type, flags, data) == 0)
		return 0;
	log_line("mount %s on %s: %s", type, target, strerror(errno));
	return -1;
}

static int is_mount_point(const char *path)
{
	char parent[4096];
	struct stat st, pst;

	snprintf(parent, sizeof(parent), "%s/..", path);
	if (stat(path, &st) || stat(parent, &pst))
		return 0;
	return st.st_dev != pst.st_dev || st.st_ino == pst.st_ino;
}

static void write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	if (write(fd, text, strlen(text)) < 0)
		log_line("write %s: %s", path, strerror(errno));
	close(fd);
}

/* Create an empty file at PATH. */
static void write_file_new(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);

	if (fd < 0)
		log_line("create %s: %s", path, strerror(errno));
	else
		close(fd);
}

/* Whether NAME is PREFIX followed by digits only (virtme_initmount0, not ..._fstype). */
static int numbered(const char *name, const char *prefix)
{
	size_t n = strlen(prefix);
	const char *p = name + n;

	if (strncmp(name, prefix, n) || !*p)
		return 0;
	for (; *p; p++)
		if (*p < '0' || *p > '9')
			return 0;
	return 1;
}

static int compare_strings(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The environment's NAME=VALUE entries whose name is PREFIX + digits, sorted; count in *n. */
static char **numbered_vars(const char *prefix, int *n)
{
	static char *found[64];
	char name[256];
	char **e;

	*n = 0;
	for (e = environ; *e && *n < 64; e++) {
		const char *eq = strchr(*e, '=');

		if (!eq || eq - *e >= (long)sizeof(name))
			continue;
		memcpy(name, *e, eq - *e);
		name[eq - *e] = '\0';
		if (numbered(name, prefix))
			found[(*n)++] = *e;
	}
	qsort(found, *n, sizeof(*found), compare_strings);
	return found;
}

/* virtme_rw_overlayN=DIR: a writable tmpfs layer over a read-only host directory. */
static void mount_overlays(void)
{
	char layer[512], upper[600], work[600], data[2048], key[128];
	int i, n;
	char **vars = numbered_vars("virtme_rw_overlay", &n);

	for (i = 0; i < n; i++) {
		const char *lower = strchr(vars[i], '=') + 1;

		snprintf(key, sizeof(key), "%.*s", (int)(lower - 1 - vars[i]), vars[i]);
		snprintf(layer, sizeof(layer), "/run/tmp/%s", key);
		snprintf(upper, sizeof(upper), "%s/upper", layer);
		snprintf(work, sizeof(work), "%s/work", layer);
		make_dirs(upper);
		make_dirs(work);
		snprintf(data, sizeof(data), "xino=off,lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work);
		do_mount(key, lower, "overlay", 0, data);
	}
}

/* virtme_initmountN=PATH: the host directory exported with tag virtme.initmountN. */
static void mount_host_dirs(void)
{
	char tag[128], fstype_var[160], target[4096];
	int i, n;
	char **vars = numbered_vars("virtme_initmount", &n);

	for (i = 0; i < n; i++) {
		const char *path = strchr(vars[i], '=') + 1;
		const char *fstype;
		char *p;

		snprintf(tag, sizeof(tag), "%.*s", (int)(path - 1 - vars[i]), vars[i]);
		snprintf(fstype_var, sizeof(fstype_var), "%s_fstype", tag);
		fstype = getenv(fstype_var);
		for (p = tag; *p; p++)
			if (*p == '_')
				*p = '.';
		while (*path == '/')
			path++;
		snprintf(target, sizeof(target), "/%s", path);
		do_mount(tag, target, fstype ? fstype : "9p", 0, NINEP_OPTIONS);
	}
}

/* Each entry of a colon-separated list (wqkit_private_dirs=/var/log:/var/tmp) through FN. */
static void apply_to_list(const char *list, void (*fn)(const char *item))
{
	char buf[4096];
	char *item, *save = NULL;

	if (!list)
		return;
	snprintf(buf, sizeof(buf), "%s", list);
	for (item = strtok_r(buf, ":", &save); item; item = strtok_r(NULL, ":", &save))
		fn(item);
}

/* Host directories the guest must not write through to: tmpfs in the guest. */
static void mount_private(const char *dir)
{
	do_mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV, "");
}

/* The booted kernel's modules at /lib/modules/RELEASE (virtme_link_mods=DIR). */
static void link_modules(void)
{
	const char *target = getenv("virtme_link_mods");
	struct utsname uts;
	char link[512];

	if (!target || getenv("virtme_root_mods") || uname(&uts))
		return;
	do_mount("none", "/lib/modules", "tmpfs", 0, "");
	snprintf(link, sizeof(link), "/lib/modules/%s", uts.release);
	if (symlink(target, link))
		log_line("symlink %s: %s", link, strerror(errno));
}

/* Start modprobe -a of wqkit_modules= (once /lib/modules is linked); its pid, or -1. */
static pid_t start_modprobe(const char *modules)
{
	char *argv[34] = { "modprobe", "-a" };
	char *envp[] = { "PATH=" DEFAULT_PATH, NULL };
	char buf[1024];
	char *item, *save = NULL;
	int argc = 2;
	pid_t pid;

	if (!modules || !*modules)
		return -1;
	snprintf(buf, sizeof(buf), "%s", modules);
	for (item = strtok_r(buf, ":", &save); item && argc < 33; item = strtok_r(NULL, ":", &save))
		argv[argc++] = item;
	argv[argc] = NULL;
	pid = fork();
	if (pid == 0) {
		execve("/sbin/modprobe", argv, envp);
		_exit(127);
	}
	return pid;
}

/* Mount M in a child; its pid, or -1. */
static pid_t start_mount(const struct kernel_mount *m)
{
	pid_t pid = fork();

	if (pid == 0)
		_exit(do_mount(m->source, m->target, m->type, m->flags, m->data) ? 1 : 0);
	return pid;
}

/* Wait for modprobe (before the agent answers: the host may read vmcoreinfo over QMP at once). */
static void wait_modprobe(pid_t pid, const char *modules)
{
	int status;

	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		return;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		log_line("modprobe %s: done", modules);
	else
		log_line("modprobe %s: exited with %d", modules, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

/* The name of virtio port VPORT (/sys/class/virtio-ports/VPORT/name) in TEXT; 0 if it has none. */
static int port_name(const char *vport, char *text, size_t size)
{
	char path[512];
	ssize_t len;
	int fd;

	snprintf(path, sizeof(path), PORTS "/%s/name", vport);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	len = read(fd, text, size - 1);
	close(fd);
	if (len <= 0)
		return 0;
	text[len] = '\0';
	text[strcspn(text, "\n")] = '\0';
	return *text != '\0';
}

/*
 * Each named virtio port through FN(name, device); stops at the first FN that returns
 * nonzero, and returns that value.
 */
static int visit_ports(int (*fn)(const char *name, const char *dev, void *arg), void *arg)
{
	char name[256], dev[300];
	struct dirent *d;
	DIR *dir = opendir(PORTS);
	int ret = 0;

	if (!dir)
		return 0;
	while (!ret && (d = readdir(dir))) {
		if (d->d_name[0] == '.' || !port_name(d->d_name, name, sizeof(name)))
			continue;
		snprintf(dev, sizeof(dev), "/dev/%s", d->d_name);
		ret = fn(name, dev, arg);
	}
	closedir(dir);
	return ret;
}

struct port_query {
	const char *name;
	char *dev;
	size_t size;
};

static int match_port(const char *name, const char *dev, void *arg)
{
	struct port_query *q = arg;

	if (strcmp(name, q->name))
		return 0;
	snprintf(q->dev, q->size, "%s", dev);
	return 1;
}

/* The device of the virtio port named NAME, in DEV; 0 if there is none. */
static int port_device(const char *name, char *dev, size_t size)
{
	struct port_query q = { name, dev, size };

	return visit_ports(match_port, &q);
}

static int link_port(const char *name, const char *dev, void *arg)
{
	char link[512];

	snprintf(link, sizeof(link), "/dev/virtio-ports/%s", name);
	symlink(dev, link);
	return 0;
}

/* /dev/fd and friends, and /dev/virtio-ports/NAME as udev would name the ports. */
static void link_dev(void)
{
	static const char *const links[][2] = {
		{ "/proc/self/fd", "/dev/fd" }, { "/proc/self/fd/0", "/dev/stdin" },
		{ "/proc/self/fd/1", "/dev/stdout" }, { "/proc/self/fd/2", "/dev/stderr" },
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(links); i++)
		symlink(links[i][0], links[i][1]);
	make_dirs("/dev/virtio-ports");
	visit_ports(link_port, NULL);
}

static int base64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* The command virtme-ng passed as virtme.exec=`BASE64`, decoded into OUT; 0 if there is none. */
static int script_from_cmdline(char *out, size_t size)
{
	static char cmdline[65536];
	int fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);
	ssize_t len;
	char *p;
	unsigned int bits = 0, nbits = 0;
	size_t n = 0;

	if (fd < 0)
		return 0;
	len = read(fd, cmdline, sizeof(cmdline) - 1);
	close(fd);
	if (len <= 0)
		return 0;
	cmdline[len] = '\0';
	p = strstr(cmdline, "virtme.exec=`");
	if (!p)
		return 0;
	for (p += strlen("virtme.exec=`"); *p && *p != '`' && n < size - 1; p++) {
		int v = base64_value(*p);

		if (v < 0)
			continue;
		bits = (bits << 6) | v;
		nbits += 6;
		if (nbits >= 8) {
			nbits -= 8;
			out[n++] = (bits >> nbits) & 0xff;
		}
	}
	out[n] = '\0';
	return 1;
}

/* Fork the script with its stdin/stdout/stderr on the virtio ports; its pid, or -1. */
static pid_t start_script(const char *script)
{
	static char *envp[128];
	char dev[3][512];
	int fds[3];
	size_t i;
	int n = 0, has_home = 0;
	char **e;
	pid_t pid;

	for (i = 0; i < 3; i++) {
		if (!port_device(script_ports[i].name, dev[i], sizeof(dev[i]))) {
			log_line("failed: no virtio port named %s", script_ports[i].name);
			return -1;
		}
	}
	for (i = 0; i < 3; i++)
		fds[i] = open(dev[i], O_RDWR);
	for (e = environ; *e && n < 123; e++) {
		if (!strncmp(*e, "virtme_", 7) || !strncmp(*e, "wqkit_", 6) || !strncmp(*e, "nr_open=", 8) ||
		    !strncmp(*e, "PATH=", 5))
			continue;
		has_home |= !strncmp(*e, "HOME=", 5);
		envp[n++] = *e;
	}
	envp[n++] = "PATH=" DEFAULT_PATH;
	envp[n++] = "WQKIT_INIT_DONE=" INIT_DONE;
	if (!has_home)
		envp[n++] = "HOME=/root";
	envp[n] = NULL;
	pid = fork();
	if (pid == 0) {
		char *argv[] = { "/bin/sh", "-c", (char *)script, NULL };

		setsid();
		for (i = 0; i < 3; i++)
			dup2(fds[i], script_ports[i].fd);
		if (chdir("/"))
			_exit(127);
		execve("/bin/sh", argv, envp);
		_exit(127);
	}
	for (i = 0; i < 3; i++)
		if (fds[i] > 2)
			close(fds[i]);
	return pid;
}

/* Reap every child (orphans are ours) until PID exits; its exit code. */
static int wait_for(pid_t pid)
{
	int status;
	pid_t child;

	for (;;) {
		child = wait(&status);
		if (child < 0 && errno == EINTR)
			continue;
		if (child < 0)
			return -1;
		if (child == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
	}
}

/* The script's exit code on the virtme.ret port (virtme-run's return code). */
static void report_exit(int code)
{
	char dev[512], text[16];

	if (!port_device("virtme.ret", dev, sizeof(dev)))
		return;
	snprintf(text, sizeof(text), "%d", code);
	write_file(dev, text);
}

int main(void)
{
	static char script[49152];
	const char *value;
	size_t i;
	pid_t modprobe, bpf, child = -1;
	int code;

	for (i = 0; i < ARRAY_SIZE(kernel_mounts); i++) {
		const struct kernel_mount *m = &kernel_mounts[i];

		/* Without an initramfs (wqkit's built kernels) the kernel has mounted /dev already. */
		if (!is_mount_point(m->target))
			do_mount(m->source, m->target, m->type, m->flags, m->data);
	}
	log_line("kernel file systems mounted");
	bpf = start_mount(&bpf_mount);
	value = getenv("nr_open");
	if (value)
		write_file("/proc/sys/fs/nr_open", value);
	value = getenv("virtme_hostname");
	write_file("/proc/sys/kernel/hostname", value ? value : "virtme-ng");
	mount_overlays();
	apply_to_list(getenv("wqkit_private_dirs"), mount_private);
	link_modules();
	modprobe = start_modprobe(getenv("wqkit_modules"));	/* loads while the rest goes on */
	mount_host_dirs();
	link_dev();
	if (!script_from_cmdline(script, sizeof(script))) {
		log_line("failed: no virtme.exec= on the kernel command line");
	} else {
		child = start_script(script);
		log_line("script started");
	}
	wait_modprobe(modprobe, getenv("wqkit_modules"));
	if (bpf > 0)
		waitpid(bpf, NULL, 0);
	write_file_new(INIT_DONE);
	log_line("set-up done");
	if (child > 0) {
		code = wait_for(child);
		log_line("script exited with code %d", code);
		report_exit(code);
	}
	sync();
	reboot(RB_POWER_OFF);
	return 0;
}
