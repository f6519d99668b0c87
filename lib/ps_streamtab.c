/* Sensor streams known to the receiver: a chained hash table. */
#include "config.h"

#include "ps_streamtab.h"

#include <stdlib.h>
#include <string.h>

static size_t hash(const char *name, size_t len, uint64_t id) {
  uint64_t h = 1469598103934665603ull ^ id; /* FNV-1a over the name */
  for (size_t i = 0; i < len; i++) {
    h = (h ^ (uint8_t)name[i]) * 1099511628211ull;
  }
  return (size_t)(h ^ (h >> 29));
}

static int grow(ps__streamtab *t) {
  size_t nb = t->n_buckets ? t->n_buckets * 2 : 64;
  ps__stream_ent **b = calloc(nb, sizeof(*b));
  if (b == NULL) {
    return -1;
  }
  for (size_t i = 0; i < t->n_buckets; i++) {
    ps__stream_ent *e = t->bucket[i], *next;
    for (; e != NULL; e = next) {
      next = e->next;
      size_t k = hash(e->name, e->name_len, e->id) & (nb - 1);
      e->next = b[k];
      b[k] = e;
    }
  }
  free(t->bucket);
  t->bucket = b;
  t->n_buckets = nb;
  return 0;
}

static void unlink_ent(ps__streamtab *t, ps__stream_ent *victim) {
  size_t k =
      hash(victim->name, victim->name_len, victim->id) & (t->n_buckets - 1);
  for (ps__stream_ent **pp = &t->bucket[k]; *pp != NULL; pp = &(*pp)->next) {
    if (*pp == victim) {
      *pp = victim->next;
      t->n--;
      t->n_dirty -= (size_t)victim->dirty;
      free(victim);
      return;
    }
  }
}

/* At the limit: forget the stream idle longest (never one in use). */
static void evict_idle(ps__streamtab *t) {
  ps__stream_ent *old = NULL;
  for (size_t i = 0; i < t->n_buckets; i++) {
    for (ps__stream_ent *e = t->bucket[i]; e != NULL; e = e->next) {
      if (e->owner == NULL && (old == NULL || e->used_ms < old->used_ms)) {
        old = e;
      }
    }
  }
  if (old != NULL) {
    unlink_ent(t, old);
  }
}

ps__stream_ent *ps__streamtab_find(const ps__streamtab *t, const char *name,
                                   size_t name_len, uint64_t id) {
  if (t->n_buckets == 0) {
    return NULL;
  }
  size_t k = hash(name, name_len, id) & (t->n_buckets - 1);
  for (ps__stream_ent *e = t->bucket[k]; e != NULL; e = e->next) {
    if (e->id == id && e->name_len == name_len &&
        memcmp(e->name, name, name_len) == 0) {
      return e;
    }
  }
  return NULL;
}

ps__stream_ent *ps__streamtab_get(ps__streamtab *t, const char *name,
                                  size_t name_len, uint64_t id) {
  if (name_len == 0 || name_len > 255) {
    return NULL;
  }
  ps__stream_ent *found = ps__streamtab_find(t, name, name_len, id);
  if (found != NULL) {
    return found;
  }
  if (t->n >= PS_STREAMTAB_MAX) {
    evict_idle(t);
  }
  if (t->n >= t->n_buckets && grow(t) != 0) {
    return NULL;
  }
  ps__stream_ent *e = calloc(1, sizeof(*e));
  if (e == NULL) {
    return NULL;
  }
  e->id = id;
  e->name_len = (uint8_t)name_len;
  memcpy(e->name, name, name_len);
  e->used_ms = ps__now_ms();
  size_t k = hash(name, name_len, id) & (t->n_buckets - 1);
  e->next = t->bucket[k];
  t->bucket[k] = e;
  t->n++;
  return e;
}

void ps__streamtab_advance(ps__streamtab *t, ps__stream_ent *e, uint64_t seq) {
  if (seq <= e->seq) {
    return;
  }
  e->seq = seq;
  if (!e->dirty) {
    e->dirty = 1;
    t->n_dirty++;
  }
}

void ps__streamtab_each(ps__streamtab *t, int dirty_only,
                        void (*fn)(void *ud, const ps__stream_ent *e),
                        void *ud) {
  if (dirty_only && t->n_dirty == 0) {
    return;
  }
  for (size_t i = 0; i < t->n_buckets; i++) {
    for (ps__stream_ent *e = t->bucket[i]; e != NULL; e = e->next) {
      if (!dirty_only || e->dirty) {
        fn(ud, e);
      }
    }
  }
}

void ps__streamtab_clean(ps__streamtab *t) {
  if (t->n_dirty == 0) {
    return;
  }
  for (size_t i = 0; i < t->n_buckets; i++) {
    for (ps__stream_ent *e = t->bucket[i]; e != NULL; e = e->next) {
      e->dirty = 0;
    }
  }
  t->n_dirty = 0;
}

void ps__streamtab_free(ps__streamtab *t) {
  for (size_t i = 0; i < t->n_buckets; i++) {
    ps__stream_ent *e = t->bucket[i], *next;
    for (; e != NULL; e = next) {
      next = e->next;
      free(e);
    }
  }
  free(t->bucket);
  memset(t, 0, sizeof(*t));
}
