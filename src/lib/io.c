/*
 * io.c: whole-file reads and durable writes (DESIGN.md durability rules:
 * temp file, fsync, rename, fsync directory). Blocking.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "io.h"
#include "log.h"
#include "banned.h"

int
io_read_file(const char *path, struct buf *out, struct buf *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int rc = -1;

	if (fd < 0) {
		buf_addf(err, "%s: %s", path, log_strerror(errno));
		return -1;
	}
	for (;;) {
		char *p = buf_reserve(out, 16384);
		ssize_t n;

		if (p == NULL) {
			/* Room may remain below max: read what fits. */
			size_t room = out->max - out->len;

			if (room == 0) {
				char c;

				n = read(fd, &c, 1);
				if (n == 0)
					break;
				buf_addf(err, "%s: file too large (max %zu bytes)",
				    path, out->max);
				goto out;
			}
			out->failed = false;
			p = buf_reserve(out, room);
			if (p == NULL)
				goto out;
			n = read(fd, p, room);
		} else {
			n = read(fd, p, 16384);
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			buf_addf(err, "%s: %s", path, log_strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		buf_commit(out, (size_t)n);
	}
	rc = 0;
out:
	close(fd);
	return rc;
}

int
io_write_all(int fd, const void *p, size_t len)
{
	const char *c = p;

	while (len > 0) {
		ssize_t n = write(fd, c, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		c += n;
		len -= (size_t)n;
	}
	return 0;
}

int
io_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	if (close(fd) != 0)
		rc = -1;
	return rc;
}

void
io_dirname(const char *path, struct buf *out)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		buf_adds(out, ".");
	else if (slash == path)
		buf_adds(out, "/");
	else
		buf_add(out, path, (size_t)(slash - path));
}

void
io_path_join(struct buf *out, const char *dir, const char *path)
{
	if (path[0] == '/' || dir == NULL || dir[0] == '\0') {
		buf_adds(out, path);
		return;
	}
	buf_adds(out, dir);
	if (dir[strlen(dir) - 1] != '/')
		buf_addc(out, '/');
	buf_adds(out, path);
}

int
io_write_file_atomic(const char *path, const void *data, size_t len,
    mode_t mode, struct buf *err)
{
	struct buf tmp, dir;
	int fd = -1, rc = -1;

	buf_init(&tmp, 4096);
	buf_init(&dir, 4096);
	buf_addf(&tmp, "%s.tmp%ld", path, (long)getpid());
	io_dirname(path, &dir);
	if (buf_failed(&tmp) || buf_failed(&dir)) {
		buf_addf(err, "%s: path too long", path);
		goto out;
	}
	fd = open(tmp.data, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
	    mode);
	if (fd < 0) {
		buf_addf(err, "%s: %s", tmp.data, log_strerror(errno));
		goto out;
	}
	if (io_write_all(fd, data, len) == -1 || fsync(fd) == -1) {
		buf_addf(err, "%s: %s", tmp.data, log_strerror(errno));
		goto out;
	}
	if (close(fd) == -1) {
		fd = -1;
		buf_addf(err, "%s: %s", tmp.data, log_strerror(errno));
		goto out;
	}
	fd = -1;
	if (rename(tmp.data, path) == -1) {
		buf_addf(err, "%s: %s", path, log_strerror(errno));
		goto out;
	}
	if (io_fsync_dir(dir.data) == -1) {
		buf_addf(err, "%s: fsync: %s", dir.data, log_strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (rc == -1)
		unlink(tmp.data);
	buf_release(&tmp);
	buf_release(&dir);
	return rc;
}

int
io_mkdir_p(const char *path, mode_t mode)
{
	struct buf b;
	int rc = -1;

	buf_init(&b, 4096);
	if (buf_adds(&b, path) == -1)
		goto out;
	for (size_t i = 1; i <= b.len; i++) {
		if (i < b.len && b.data[i] != '/')
			continue;
		b.data[i] = '\0';
		if (mkdir(b.data, mode) == -1 && errno != EEXIST)
			goto out;
		if (i < b.len)
			b.data[i] = '/';
	}
	rc = 0;
out:
	buf_release(&b);
	return rc;
}
