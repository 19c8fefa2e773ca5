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
    }
  ]
}
