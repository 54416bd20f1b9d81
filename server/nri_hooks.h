/* hulld's NRI listener (nri_hooks.c): installs the lifecycle hooks of server/hooks.h so that
 * NRI plugins (nri/nri.h) see and adjust pods and containers. */
#ifndef HULL_SERVER_NRI_HOOKS_H
#define HULL_SERVER_NRI_HOOKS_H

#include "server/server.h"

/* server_init / server_fini: takes config->nri_socket when enable_nri (a socket another
 * runtime serves is logged and NRI left off); on success srv->hooks is NRI's table. */
void nri_hooks_init(struct hull_server *srv);
void nri_hooks_fini(struct hull_server *srv);

#endif
