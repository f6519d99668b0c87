/* count_receiver: a receiver embedded in a program, with its own loop
 * (the step API), counting packets per sensor through a callback sink.
 *
 *   count_receiver PORT SESSIONS
 *
 * Listens on 127.0.0.1:PORT (0 picks one and prints it), and exits after
 * SESSIONS sensor sessions have ended, printing a line per sensor.
 */
#include <packetstreamer/packetstreamer.h>

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct counts {
  unsigned ended;
  unsigned long long packets[64];
  unsigned long long bytes[64];
} counts;

static int on_packet(const ps_session_info *s, const ps_interface_info *ifc,
                     const ps_packet *pkt, void *user_data) {
  (void)ifc;
  counts *c = user_data;
  c->packets[s->id % 64]++;
  c->bytes[s->id % 64] += pkt->caplen;
  return 0; /* non-zero would refuse the sensor */
}

static void on_end(const ps_session_info *s, void *user_data) {
  counts *c = user_data;
  printf("sensor %s: %llu packets, %llu bytes\n", s->sensor,
         c->packets[s->id % 64], c->bytes[s->id % 64]);
  fflush(stdout);
  c->ended++;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s PORT SESSIONS\n", argv[0]);
    return 2;
  }
  unsigned want = (unsigned)strtoul(argv[2], NULL, 10);
  counts c = {0};
  ps_sink_callbacks cb = PS_SINK_CALLBACKS_INIT;
  cb.packet = on_packet;
  cb.session_end = on_end;
  ps_receiver *r = NULL;
  ps_sink *sink = NULL;
  if (ps_receiver_create(&r) != 0 ||
      ps_receiver_listen(r, "127.0.0.1", (uint16_t)atoi(argv[1])) != 0 ||
      ps_callback_sink(&sink, &cb, sizeof(cb), &c) != 0 ||
      ps_receiver_add_sink(r, sink) != 0) {
    fprintf(stderr, "count_receiver: %s\n", r ? ps_receiver_errmsg(r) : "");
    return 1;
  }
  printf("listening on port %u\n", ps_receiver_port(r));
  fflush(stdout);
  /* Our own loop: wait on the receiver's descriptor, then one step. */
  int rc = 0;
  while (rc == 0 && c.ended < want) {
    struct pollfd pfd = {ps_receiver_get_fd(r), POLLIN, 0};
    poll(&pfd, 1, ps_receiver_get_timeout_ms(r));
    rc = ps_receiver_process(r);
  }
  ps_receiver_shutdown(r);
  ps_receiver_free(r); /* frees the sink too */
  return rc == 0 ? 0 : 1;
}
