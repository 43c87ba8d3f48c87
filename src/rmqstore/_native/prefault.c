/* Page and block management of segment files: pre-faulting off the hot path (as RocketMQ's
 * warmMapedFileEnable does; only MADV_POPULATE_WRITE, which never changes content, so it is
 * safe beside a writer), zeroing a tail without touching its pages, and writing zeros ahead
 * of the writer so that its syncs find the blocks converted. */
#include "rmq_native.h"
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

int32_t rmq_populate(uint8_t *addr, size_t start, size_t len) {
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0) page = 4096;
    size_t aligned = start - start % (size_t)page;
    len += start - aligned;
    if (len == 0) return 0;
    return madvise(addr + aligned, len, MADV_POPULATE_WRITE) == 0 ? 0 : errno;
}

int32_t rmq_punch_hole(int32_t fd, int64_t start, int64_t len) {
    if (len <= 0) return 0;
    return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, start, len) == 0 ? 0 : errno;
}

int32_t rmq_zero_range(int32_t fd, int64_t start, int64_t len) {
    if (len <= 0) return 0;
    if (rmq_punch_hole(fd, start, len) != 0) return -1;
    return fallocate(fd, 0, start, len) == 0 ? 0 : -1;
}

#define ZEROS_BYTES (64 << 10)

int32_t rmq_write_zeros(int32_t fd, int64_t start, int64_t len) {
    static const uint8_t zeros[ZEROS_BYTES];
    for (int64_t off = start, end = start + len; off < end;) {
        int64_t n = end - off < ZEROS_BYTES ? end - off : ZEROS_BYTES;
        ssize_t w = pwrite(fd, zeros, (size_t)n, off);
        if (w < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        off += w;
    }
    /* Write-back begun, not awaited: the blocks are converted by the time the writer
     * reaches them. Without SYNC_FILE_RANGE_WAIT_AFTER no write-back error is taken from
     * the file: the next fdatasync reports it (sync_failure.py). A file system without
     * sync_file_range leaves the write-back to the next sync. */
    if (len > 0 && sync_file_range(fd, start, len, SYNC_FILE_RANGE_WRITE) != 0 &&
        errno != ENOSYS && errno != EINVAL)
        return errno;
    return 0;
}
