/* idtable.c - open-addressing id table (see idtable.h). */
#include "idtable.h"

#include <string.h>

/* splitmix64's finaliser: ids are often small consecutive integers, so mix them. */
static uint64_t hash_id(uint64_t x)
{
    x ^= x >> 30;
    x *= UINT64_C(0xbf58476d1ce4e5b9);
    x ^= x >> 27;
    x *= UINT64_C(0x94d049bb133111eb);
    x ^= x >> 31;
    return x;
}

void td_idtable_init(struct td_idtable *t)
{
    memset(t, 0, sizeof *t);
}

void td_idtable_fini(struct td_idtable *t)
{
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i].tensor)
            td_tensor_release(t->slots[i].tensor);
    td_free(t->slots);
    memset(t, 0, sizeof *t);
}

struct td_idtable_entry *td_idtable_find(const struct td_idtable *t, uint64_t id)
{
    if (t->cap == 0)
        return NULL;
    size_t mask = t->cap - 1;
    for (size_t i = hash_id(id) & mask;; i = (i + 1) & mask) {
        struct td_idtable_entry *e = &t->slots[i];
        if (!e->tensor)
            return NULL;
        if (e->id == id)
            return e;
    }
}

static void place(struct td_idtable_entry *slots, size_t cap, const struct td_idtable_entry *src)
{
    size_t mask = cap - 1;
    size_t i = hash_id(src->id) & mask;
    while (slots[i].tensor)
        i = (i + 1) & mask;
    slots[i] = *src;
}

static int grow(struct td_idtable *t)
{
    size_t ncap = t->cap ? t->cap * 2 : 16;
    size_t bytes;
    if (!td_mul_size(ncap, sizeof(struct td_idtable_entry), &bytes))
        return TD_ENOMEM;
    struct td_idtable_entry *ns = td_calloc(ncap, sizeof *ns);
    if (!ns)
        return TD_ENOMEM;
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i].tensor)
            place(ns, ncap, &t->slots[i]);
    td_free(t->slots);
    t->slots = ns;
    t->cap = ncap;
    return 0;
}

int td_idtable_insert(struct td_idtable *t, uint64_t id, struct td_tensor *tensor,
                      uint64_t received, uint64_t nbytes)
{
    /* Keep the load factor at or below 3/4 so probe chains stay short. */
    if ((t->count + 1) * 4 > t->cap * 3) {
        int rc = grow(t);
        if (rc != 0)
            return rc;
    }
    struct td_idtable_entry e = {.id = id, .tensor = tensor, .received = received,
                                 .nbytes = nbytes};
    place(t->slots, t->cap, &e);
    t->count++;
    return 0;
}

bool td_idtable_remove(struct td_idtable *t, uint64_t id)
{
    struct td_idtable_entry *e = td_idtable_find(t, id);
    if (!e)
        return false;
    td_tensor_release(e->tensor);
    size_t mask = t->cap - 1;
    size_t hole = (size_t)(e - t->slots);
    t->slots[hole].tensor = NULL;
    t->count--;
    /* Backward-shift deletion: move later members of the probe run into the hole when their
     * home slot does not lie cyclically between the hole and their current slot. */
    for (size_t j = (hole + 1) & mask; t->slots[j].tensor; j = (j + 1) & mask) {
        size_t home = hash_id(t->slots[j].id) & mask;
        bool stays = (hole <= j) ? (hole < home && home <= j) : (hole < home || home <= j);
        if (stays)
            continue;
        t->slots[hole] = t->slots[j];
        t->slots[j].tensor = NULL;
        hole = j;
    }
    return true;
}
