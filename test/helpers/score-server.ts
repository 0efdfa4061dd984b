/**
 * A fake Score storage service on 127.0.0.1 for tests: `GET /download/{objectId}` with a Bearer
 * token answers an object specification whose one part is a "presigned" URL on a FixtureServer
 * (which serves the bytes and ignores the query string), signed to expire `urlLifetimeS` from now.
 * Wrong token: 401; unknown object: 404. Counts the specification requests.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash } from 'node:crypto';
import type { FixtureServer } from './fixture-server.js';

export class ScoreServer {
  readonly origin: string;
  specRequests = 0;
  /** Lifetime of the presigned URLs handed out from now on. */
  urlLifetimeS = 86_400;
  private readonly objects = new Map<string, { path: string; size: number; md5: string }>();
  /** What the metadata service knows: id, file name, analysis. */
  readonly entities: { id: string; fileName: string; gnosId: string }[] = [];

  private constructor(
    private readonly server: Server,
    port: number,
    private readonly data: FixtureServer,
    readonly token: string,
  ) {
    this.origin = `http://127.0.0.1:${port}`;
  }

  static async start(data: FixtureServer, token: string): Promise<ScoreServer> {
    const server = createServer();
    await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
    const s = new ScoreServer(server, (server.address() as AddressInfo).port, data, token);
    server.on('request', (req, res) => {
      const json = (status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      const ent = /^\/entities(?:\/([^/?]+))?(?:\?(.*))?$/.exec(req.url ?? '');
      if (ent) {
        if (req.headers.authorization !== `Bearer ${s.token}`) return json(401, { message: 'unauthorized' });
        if (ent[1]) {
          const e = s.entities.find((x) => x.id === decodeURIComponent(ent[1]));
          return e ? json(200, { ...e, projectCode: 'TEST-XX', access: 'controlled' }) : json(404, { message: 'not found' });
        }
        const q = new URLSearchParams(ent[2] ?? '');
        const all = s.entities.filter((x) => x.gnosId === q.get('gnosId'));
        const size = Number(q.get('size') ?? 20);
        const page = Number(q.get('page') ?? 0);
        const content = all.slice(page * size, (page + 1) * size);
        return json(200, { content, last: (page + 1) * size >= all.length, totalElements: all.length, number: page, size });
      }
      const m = /^\/download\/([^/?]+)\?/.exec(req.url ?? '');
      if (!m) {
        res.writeHead(404).end();
        return;
      }
      s.specRequests++;
      if (req.headers.authorization !== `Bearer ${s.token}`) {
        res.writeHead(401, { 'content-type': 'text/html' }).end('<html>Unauthorized</html>');
        return;
      }
      const obj = s.objects.get(decodeURIComponent(m[1]));
      if (!obj) {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"message":"not found"}');
        return;
      }
      const date = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
      const url = `${s.data.url(obj.path)}?X-Amz-Date=${date}&X-Amz-Expires=${s.urlLifetimeS}&X-Amz-Signature=SECRETSIG${s.specRequests}`;
      const spec = { objectId: m[1], objectKey: `data/${m[1]}`, objectSize: obj.size, objectMd5: obj.md5, parts: [{ partNumber: 1, partSize: obj.size, offset: 0, url, md5: null }] };
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(spec));
    });
    return s;
  }

  /** Registers an object whose bytes the FixtureServer serves at `path` (and its metadata entity). */
  addObject(objectId: string, path: string, bytes: Buffer, entity?: { fileName: string; gnosId: string }): void {
    this.data.addFile(path, bytes);
    if (entity) this.entities.push({ id: objectId, ...entity });
    this.objects.set(objectId, { path, size: bytes.length, md5: createHash('md5').update(bytes).digest('hex') });
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((res) => this.server.close(() => res()));
  }
}
