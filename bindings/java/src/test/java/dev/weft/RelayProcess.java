package dev.weft;

import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A weft-relay process ($WEFT_RELAY) on 127.0.0.1, port 0 (the kernel picks a free one), secure
 * by default as a deployed relay is; stopped by its PID (SIGTERM, then SIGKILL).
 */
final class RelayProcess implements AutoCloseable {
  private final Process process;
  final int port;

  RelayProcess(File dataDir, String... flags) throws IOException {
    String binary = System.getenv("WEFT_RELAY");
    if (binary == null) throw new IllegalStateException("set WEFT_RELAY to the weft-relay binary");
    List<String> cmd = new ArrayList<>(List.of(binary, "--listen", "127.0.0.1:0", "--data",
        dataDir.getPath()));
    cmd.addAll(List.of(flags));
    process = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.DISCARD).start();
    String line = new BufferedReader(
        new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8)).readLine();
    if (line == null || !line.contains("listening on 127.0.0.1:")) {
      close();
      throw new IOException("weft-relay did not start: " + line);
    }
    port = Integer.parseInt(line.split("127\\.0\\.0\\.1:")[1].split("\\D")[0]);
  }

  String url() {
    return "ws://127.0.0.1:" + port;
  }

  long pid() {
    return process.pid();
  }

  @Override
  public void close() {
    ProcessHandle h = process.toHandle();
    h.destroy();
    try {
      if (!process.waitFor(10, TimeUnit.SECONDS)) {
        h.destroyForcibly();
        process.waitFor();
      }
    } catch (InterruptedException e) {
      h.destroyForcibly();
      Thread.currentThread().interrupt();
    }
  }
}
