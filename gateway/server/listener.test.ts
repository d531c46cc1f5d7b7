import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { createListener, remoteAddressOf, type Listener } from "./listener.js";

let listener: Listener | undefined;
afterEach(async () => {
  await listener?.close(100);
  listener = undefined;
});

async function start(): Promise<number> {
  listener = createListener((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      res.setHeader("content-type", "text/plain");
      res.end(`${req.httpVersion} ${req.method} ${req.url} ${Buffer.concat(chunks).toString()}${req.url === "/peer" ? ` from ${remoteAddressOf(req)}` : ""}`);
    });
  });
  return listener.listen(0, "127.0.0.1");
}

/** Sends raw bytes and answers everything the server wrote before closing (or 2 s). */
function raw(port: number, bytes: string): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1", () => s.write(bytes));
    let out = "";
    s.on("data", (d) => { out += d.toString(); });
    const done = () => resolve(out);
    s.on("close", done);
    s.on("error", done);
    setTimeout(() => { s.destroy(); done(); }, 2_000);
  });
}

describe("listener", () => {
  it("serves HTTP/1.1 and h2c on the same port", async () => {
    const port = await start();
    const h1 = await new Promise<string>((resolve, reject) => {
      http.get(`http://127.0.0.1:${port}/a?b=1`, (res) => {
        let body = "";
        res.on("data", (c) => { body += c; });
        res.on("end", () => resolve(body));
      }).on("error", reject);
    });
    expect(h1).toBe("1.1 GET /a?b=1 ");
    const session = http2.connect(`http://127.0.0.1:${port}`);
    try {
      const h2 = await new Promise<string>((resolve, reject) => {
        const req = session.request({ ":method": "POST", ":path": "/x" });
        let body = "";
        req.on("data", (c) => { body += c; });
        req.on("end", () => resolve(body));
        req.on("error", reject);
        req.end("hello");
      });
      expect(h2).toBe("2.0 POST /x hello");
      const peer = await new Promise<string>((resolve, reject) => {
        const req = session.request({ ":method": "GET", ":path": "/peer" });
        let body = "";
        req.on("data", (c) => { body += c; });
        req.on("end", () => resolve(body));
        req.on("error", reject);
        req.end();
      });
      expect(peer).toBe("2.0 GET /peer  from 127.0.0.1");
    } finally {
      session.close();
    }
  });

  it("refuses a request with both Content-Length and Transfer-Encoding and closes the connection", async () => {
    const port = await start();
    const out = await raw(port, "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n");
    expect(out).toMatch(/^HTTP\/1\.1 400/);
    expect(out).not.toContain("/smuggled");
  });

  it("refuses two different Content-Length headers", async () => {
    const port = await start();
    const out = await raw(port, "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde");
    expect(out).toMatch(/^HTTP\/1\.1 400/);
  });

  it("refuses an obsolete line-folded header", async () => {
    const port = await start();
    const out = await raw(port, "GET /a HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  folded\r\n\r\n");
    expect(out).toMatch(/^HTTP\/1\.1 400/);
  });

  it("drops a client that never finishes its headers (slowloris) after the header timeout", async () => {
    listener = createListener((_req, res) => res.end("ok"), { headersTimeoutMs: 300 });
    const port = await listener.listen(0, "127.0.0.1");
    const started = Date.now();
    const out = await raw(port, "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ");
    expect([out.split("\r\n")[0], Date.now() - started < 1_900]).toEqual(["HTTP/1.1 408 Request Timeout", true]);
  });

  it("closes idle keep-alive connections on close and stops accepting", async () => {
    const port = await start();
    const agent = new http.Agent({ keepAlive: true });
    await new Promise<void>((resolve) => http.get({ port, host: "127.0.0.1", path: "/", agent }, (res) => { res.resume(); res.on("end", resolve); }));
    await listener!.close(500);
    listener = undefined;
    await expect(raw(port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")).resolves.toBe("");
    agent.destroy();
  });
});
