/* Private helpers shared by the files of cni/ (not an interface: use cni.h). */
#ifndef HULL_CNI_INTERNAL_H
#define HULL_CNI_INTERNAL_H

#include <stdatomic.h>

#include "cni/cni.h"

struct cni_network {
    atomic_int refs;
    char *text;   /* as loaded */
    char *source; /* file path or "" */
    yajl_val doc;
    const char *name;    /* in doc */
    const char *version; /* in doc */
    bool disable_check;
    yajl_val *plugins; /* objects inside doc */
    size_t n_plugins;
};

/* Emits a yajl tree through a writer (numbers keep their text). */
void cni_json_emit(struct hull_json_writer *w, yajl_val v);
/* Compares dotted versions: <0, 0, >0. */
int cni_version_cmp(const char *a, const char *b);

#endif
