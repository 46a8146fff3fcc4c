/* A write-ahead journal: one preallocated file that one process appends
 * commits to, each durable before journal_commit() returns; commits that
 * arrive together share one durable write.
 *
 * The file is JOURNAL_BYTES long and written with zeros when it is made, so
 * a commit overwrites blocks that exist already and its sync writes the
 * data alone, with no change of size or allocation to record.  Page 0 holds
 * a header with the sequence number of the first commit of the current
 * round; commits follow, each at a page boundary so that no commit's write
 * touches a page an earlier commit (already durable) lives in:
 *
 *   header  "TDHJRNL1" | base_seq u64 | crc u32          (page 0)
 *   commit  magic u32 | len u32 | seq u64 | crc u32 | 0 u32 | body[len]
 *
 * Integers are little-endian; crc is CRC-32 (IEEE) over the fields before it
 * and the body.  Reading stops at the first commit whose magic, seq (one
 * more than the last), length or crc is wrong: a torn write or what is left
 * of an earlier round.  Once the owner has made everything its commits
 * describe durable elsewhere it calls journal_reset(), which starts a new
 * round at the next seq.  A journal opened from disk is read first
 * (journal_replay()); its next round, begun by journal_reset() or by the
 * first commit, starts a round's worth of pages further on, so no commit
 * left behind a torn one can ever match a seq again.  seq never goes back,
 * even across reopens, so a checkpoint can be kept as "every commit up to
 * seq N".  (A failed write is the one exception: its group's seqs are
 * given again, as none of them was ever acknowledged.) */
#ifndef TDHOOK_JOURNAL_H
#define TDHOOK_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#define JOURNAL_BYTES (4u * 1024 * 1024)
#define JOURNAL_PAGE 4096u

#define JOURNAL_OK 0
#define JOURNAL_EIO 1       /* write or fdatasync failed (logged) */
#define JOURNAL_EFULL 2     /* no room left in this round: reset first */
#define JOURNAL_EBIG 3      /* the body can never fit */
#define JOURNAL_EBUSY 4     /* journal_open(): another process holds it */
#define JOURNAL_EAPPLY 5    /* durable, but the apply callback failed for it */

typedef struct journal journal_t;

/* Opens path, creating and preallocating it (durably) when it is missing or
 * of the wrong size, and takes an exclusive flock() on it for as long as it
 * is open.  NULL on failure with *err set to JOURNAL_EBUSY or JOURNAL_EIO
 * and *errstr allocated. */
journal_t *journal_open(const char *path, int *err, char **errstr);
void journal_close(journal_t *j);

/* What a commit is applied with once it is durable (see journal_commit());
 * replay calls the same kind of function.  0 when done. */
typedef int (*journal_apply_fn)(uint64_t seq, const char *body, size_t len, void *arg);

/* Calls fn for each valid commit of the round found on disk, in order; at
 * most once after journal_open() (0 later).  fn returns 0 to go on.
 * Returns the number of commits read, or -1 when fn failed.  The commits
 * stay until the next round begins: with journal_reset(), or with the first
 * journal_commit(), which drops what was not replayed. */
int journal_replay(journal_t *j, journal_apply_fn fn, void *arg);

/* Appends one commit and makes it durable.  *seq (if not NULL) gets its
 * sequence number when it is on the disk (JOURNAL_OK, JOURNAL_EAPPLY), else
 * 0.  JOURNAL_OK, JOURNAL_EFULL, JOURNAL_EBIG, JOURNAL_EIO, JOURNAL_EAPPLY.
 * Threads of one process may commit at once: the commits waiting when one
 * of them finds nobody writing go to the disk together, with one write
 * (group commit; O_DIRECT | O_DSYNC where the file system can, else a
 * write and fdatasync()).  That thread also runs the apply callback
 * (journal_set_apply()) for each commit of its group, in seq order, and
 * then the group's end callback, before any of them returns.  A failed
 * write fails its whole group, and the next group takes its place and
 * seqs.  journal_replay() and journal_reset() must not run alongside a
 * commit; the caller keeps them apart. */
int journal_commit(journal_t *j, const void *body, size_t len, uint64_t *seq);

/* What a submitted commit's end is told: JOURNAL_OK, JOURNAL_EAPPLY or
 * JOURNAL_EIO, and its seq (0 unless it is on the disk). */
typedef void (*journal_done_fn)(int rc, uint64_t seq, void *arg);

/* As journal_commit(), but the calling thread goes on: the body is copied,
 * and done(rc, seq, arg) is called once the commit's group is written and
 * applied, by the thread that writes it; with nobody writing, that is the
 * calling thread, before this returns.  A leading thread leads on for as
 * long as submitted commits wait.  JOURNAL_OK (done will be or has been
 * called), else JOURNAL_EFULL, JOURNAL_EBIG or JOURNAL_EIO at once (done is
 * not called). */
int journal_submit(journal_t *j, const void *body, size_t len, journal_done_fn done,
                   void *arg);

/* Called by journal_make_room() just before it starts a new round, with
 * the last seq of the old one, and nothing committing meanwhile: 0 when
 * every commit so far is durable elsewhere. */
typedef int (*journal_room_fn)(uint64_t last, void *arg);

/* Makes room for a body of len bytes: waits until no commit is in flight,
 * then, unless the round has room (another thread made it meanwhile),
 * calls ready and starts a new round.  New commits wait meanwhile.
 * JOURNAL_OK or JOURNAL_EIO. */
int journal_make_room(journal_t *j, size_t len, journal_room_fn ready, void *arg);

/* Called once after fn has applied each commit of a group, with the same
 * arg; non-zero makes every commit of the group JOURNAL_EAPPLY. */
typedef int (*journal_group_fn)(void *arg);

/* Sets what each durable commit is applied with, and what ends a group
 * (NULL: nothing). */
void journal_set_apply(journal_t *j, journal_apply_fn fn, journal_group_fn group_end,
                       void *arg);

/* 1 when a body of len bytes fits in the current round. */
int journal_fits(journal_t *j, size_t len);

/* Starts a new round after the last commit: the caller vouches that every
 * commit so far is durable elsewhere.  JOURNAL_OK or JOURNAL_EIO. */
int journal_reset(journal_t *j);

/* The seq of the last commit; on a new file, one below its first (seqs of
 * a new file start at the time in microseconds, above any an earlier file
 * of the same name can have reached). */
uint64_t journal_last_seq(journal_t *j);
/* Commits in the current round. */
unsigned journal_pending(journal_t *j);
/* The largest body journal_commit() can ever take. */
size_t journal_max_body(void);

/* CRC-32 (IEEE 802.3, as zlib's crc32()), continued from crc (0 to start). */
uint32_t journal_crc32(uint32_t crc, const void *data, size_t len);

#endif
