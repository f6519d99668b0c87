/* sensor_capture: the smallest embedded sensor. Captures an interface
 * (or reads a capture file) and streams it to a ps-receiver.
 *
 *   sensor_capture HOST PORT -i IFACE [FILTER]
 *   sensor_capture HOST PORT -r FILE
 *
 * Build: cc sensor_capture.c $(pkg-config --cflags --libs libpacketstreamer)
 */
#include <packetstreamer/packetstreamer.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void log_line(ps_log_level level, const char *msg, void *user_data) {
  (void)level;
  (void)user_data;
  fprintf(stderr, "sensor_capture: %s\n", msg);
}

int main(int argc, char **argv) {
  if (argc < 5 || (strcmp(argv[3], "-i") && strcmp(argv[3], "-r"))) {
    fprintf(stderr, "usage: %s HOST PORT -i IFACE [FILTER] | -r FILE\n",
            argv[0]);
    return 2;
  }
  ps_sensor *sensor = NULL;
  ps_stream *stream = NULL;
  int rc = ps_sensor_create(&sensor);
  if (rc == 0) {
    ps_sensor_set_log(sensor, log_line, NULL);
    rc = strcmp(argv[3], "-i") == 0 ? ps_sensor_add_interface(sensor, argv[4])
                                    : ps_sensor_set_file(sensor, argv[4]);
  }
  if (rc == 0 && argc > 5) {
    rc = ps_sensor_set_filter(sensor, argv[5]);
  }
  /* Open first: a bad interface, file or filter fails before connecting. */
  if (rc == 0 && (rc = ps_sensor_open(sensor)) != 0) {
    fprintf(stderr, "%s\n", ps_sensor_errmsg(sensor));
  }
  if (rc == 0) {
    rc = ps_stream_create(&stream, "example-sensor");
  }
  if (rc == 0) {
    ps_stream_set_log(stream, log_line, NULL);
    ps_stream_set_connect_timeout_ms(stream, 10000);
    rc = ps_stream_connect(stream, argv[1], (uint16_t)atoi(argv[2]));
    if (rc != 0) {
      fprintf(stderr, "%s\n", ps_stream_errmsg(stream));
    }
  }
  if (rc == 0 && (rc = ps_sensor_run(sensor, stream)) != 0) {
    fprintf(stderr, "%s\n", ps_sensor_errmsg(sensor));
  }
  /* Returns once the receiver confirmed it has written everything. */
  if (rc == 0 && (rc = ps_stream_close(stream, 30000)) != 0) {
    fprintf(stderr, "%s\n", ps_stream_errmsg(stream));
  }
  if (rc == 0) {
    ps_stream_counters c;
    ps_stream_get_counters(stream, &c, sizeof(c));
    printf("sent %llu packets, %llu bytes\n",
           (unsigned long long)c.packets_sent,
           (unsigned long long)c.bytes_sent);
  }
  ps_stream_free(stream);
  ps_sensor_free(sensor);
  return rc == 0 ? 0 : 1;
}
