{
  "targets": [
    {
      "target_name": "pins",
      "sources": ["pins.c"],
      "cflags": ["-O2", "-Wall", "-Wno-unused-parameter"]
    },
    {
      "target_name": "carry",
      "sources": ["carry.c"],
      "cflags": ["-O2", "-Wall", "-Wno-unused-parameter"]
    },
    {
      "target_name": "link-gso",
      "type": "executable",
      "sources": ["link-gso.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-sign-compare"]
    }
  ]
}
