/* server/daemon/: hulld itself: main() (configuration, signals), the wiring of the service areas
 * into the server object (server.c), and service-manager notification (notify.c).  Nothing else
 * in server/ includes this header: the daemon sits on top of every area. */
#ifndef HULL_SERVER_DAEMON_DAEMON_H
#define HULL_SERVER_DAEMON_DAEMON_H

#include "server/server.h"

/* Creates the state directories, the event hub, opens the store and every service area
 * (recovering state), in dependency order. */
int server_init(struct hull_server *srv, struct hull_config *config, hull_error_t *err);
/* Applies what can change at run time from a freshly loaded configuration (SIGHUP): the log
 * level and the registry settings.  Takes fresh. */
void server_reload(struct hull_server *srv, struct hull_config *fresh);
void server_fini(struct hull_server *srv);

/* sd_notify(3) without libsystemd: keeps $NOTIFY_SOCKET and removes it from the environment so
 * children (monitors, OCI runtimes) never see it.  Call once, before any thread starts. */
char *notify_socket_take(void);
/* Sends state ("READY=1\nMAINPID=…") to the socket (a path or an abstract '@' name); no-op when
 * socket is NULL/empty. */
int notify_send(const char *socket, const char *state);

#endif
