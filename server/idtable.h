/*
 * idtable.h - a session's id -> tensor table: open addressing with linear probing and
 * backward-shift deletion, keyed by the client's 64-bit ids. Each entry also records how
 * many bytes of an upload have arrived, so a tensor sent in chunks is usable only once
 * complete. Thread: not synchronised; a session is touched by one worker at a time.
 */
#ifndef TD_SRV_IDTABLE_H
#define TD_SRV_IDTABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "td_core.h"

struct td_idtable_entry {
    uint64_t id;
    struct td_tensor *tensor;  /* owned; NULL marks an empty slot */
    uint64_t received;         /* bytes uploaded so far; == nbytes when complete */
    uint64_t nbytes;
};

struct td_idtable {
    struct td_idtable_entry *slots;
    size_t cap;                /* power of two, or 0 */
    size_t count;
};

void td_idtable_init(struct td_idtable *t);
/* Releases every tensor and the slot array. */
void td_idtable_fini(struct td_idtable *t);
/* Returns: the entry for id (borrowed, valid until the next insert/remove) or NULL. */
struct td_idtable_entry *td_idtable_find(const struct td_idtable *t, uint64_t id);
/* Inserts id; takes ownership of tensor on success. The caller has checked id is absent.
 * Returns: 0 or TD_ENOMEM (growing failed; tensor not taken). */
int td_idtable_insert(struct td_idtable *t, uint64_t id, struct td_tensor *tensor,
                      uint64_t received, uint64_t nbytes) TD_WUR;
/* Removes id and releases its tensor. Returns: true when id was present. */
bool td_idtable_remove(struct td_idtable *t, uint64_t id);

#endif
