/* Shared by the cgroup library's files (cgroup*.c) only: file helpers and the pieces one
 * writer borrows from another. */
#ifndef HULL_COMMON_CGROUP_INTERNAL_H
#define HULL_COMMON_CGROUP_INTERNAL_H

#include "common/cgroup.h"

/* Writes value to dir/file (O_TRUNC as runc: no effect on cgroupfs, keeps fixture trees
 * exact; O_NOFOLLOW). */
int cg_write(const char *dir, const char *file, const char *value, hull_error_t *err);
int cg_write_i64(const char *dir, const char *file, int64_t v, hull_error_t *err);
int cg_write_u64(const char *dir, const char *file, uint64_t v, hull_error_t *err);
/* "max" for a negative value or INT64_MAX, else the number. */
int cg_write_max(const char *dir, const char *file, int64_t v, hull_error_t *err);
/* dir/file's text without its trailing newline and blanks; NULL when it cannot be read. */
char *cg_read(const char *dir, const char *file);
bool cg_exists(const char *dir, const char *file);

/* cpuset.cpus / cpuset.mems (v1 and v2 files are named alike). */
int cg_cpuset_write(const char *dir, const struct hull_cgroup_resources *res, hull_error_t *err);
/* hugetlb.<size>.limit_in_bytes (v1) / hugetlb.<size>.max (v2). */
int cg_hugetlb_write(const char *dir, const struct hull_cgroup_resources *res, bool v2,
                     hull_error_t *err);

/* The v2 controllers whose settings cg_v2_apply writes. */
enum {
    CG_V2_CPU = 1 << 0,
    CG_V2_CPUSET = 1 << 1,
    CG_V2_MEMORY = 1 << 2,
    CG_V2_PIDS = 1 << 3,
    CG_V2_IO = 1 << 4,
    CG_V2_HUGETLB = 1 << 5,
    CG_V2_UNIFIED = 1 << 6, /* linux.resources.unified */
    CG_V2_ALL = (1 << 7) - 1,
};
/* The v2 settings of the controllers in mask. */
int cg_v2_apply(const char *dir, const struct hull_cgroup_resources *res, unsigned mask,
                hull_error_t *err);
/* The mask bit of a cgroup2 controller name ("io"), 0 for none; *v1 its v1 name ("blkio"). */
unsigned cg_v2_controller_bit(const char *v2_name, const char **v1_name);

/* The pids a cgroup.procs file lists, the caller's own too when with_self (the usage readers
 * count every process; hull_cgroup_read_procs, for signalling, never lists the caller). */
int cg_read_pids(const char *procs, bool with_self, pid_t **out, size_t *n, hull_error_t *err);

/* ---- usage readers (cgroup_stats*.c) ---- */
/* dir/file's text as cg_read, or NULL when dir is NULL (cgroup_stats_common.c). */
char *cg_stats_text(const char *dir, const char *file);
/* One number or "max", as hull_cgroup_read_u64, from text (cgroup_stats.c). */
bool cg_parse_u64(const char *s, uint64_t *v, bool *unlimited);
/* v1 (cgroup_stats_v1.c): cpuacct and cpu (either dir may be NULL), memory, blkio. */
void cg_stats_v1_cpu(const char *acct, const char *cpu, struct hull_cgroup_cpu_stats *c);
void cg_stats_v1_memory(const char *dir, struct hull_cgroup_memory_stats *m);
void cg_stats_v1_io(const char *dir, struct hull_cgroup_io_stats *io);
/* v2 (cgroup_stats_v2.c): the cgroup2 directory's cpu, memory and io files. */
void cg_stats_v2_cpu(const char *dir, struct hull_cgroup_cpu_stats *c);
void cg_stats_v2_memory(const char *dir, struct hull_cgroup_memory_stats *m);
void cg_stats_v2_io(const char *dir, struct hull_cgroup_io_stats *io);
/* working set, available and swap available from what memory_v1/_v2 read
 * (cgroup_stats_common.c) */
void cg_stats_memory_finish(struct hull_cgroup_memory_stats *m, uint64_t limit, bool limit_known);

#endif
