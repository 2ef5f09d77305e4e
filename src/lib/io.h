/*
 * io.h: whole-file reads and durable writes. Blocking; any thread but the
 * reactor.
 */
#ifndef LIB_IO_H
#define LIB_IO_H

#include <stddef.h>
#include <sys/types.h>

struct buf;

/* Read all of path into out (appending; out's max bounds the size). On
 * error append "path: reason" to err and return -1. */
int io_read_file(const char *path, struct buf *out, struct buf *err);
/* Write data to path durably: temp file in the same directory, fsync,
 * rename, fsync directory. Mode for a new file. */
int io_write_file_atomic(const char *path, const void *data, size_t len,
    mode_t mode, struct buf *err);
/* Write everything, retrying on EINTR and short writes (blocking fd). */
int io_write_all(int fd, const void *p, size_t len);
int io_fsync_dir(const char *dir);
/* mkdir -p with mode for created directories. */
int io_mkdir_p(const char *path, mode_t mode);
/* Directory part of path into out ("." when none). */
void io_dirname(const char *path, struct buf *out);
/* Join dir and a relative path unless path is absolute. */
void io_path_join(struct buf *out, const char *dir, const char *path);

#endif
