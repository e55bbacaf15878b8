import { describe, expect, it } from 'vitest';
import { Router } from '../../agent/http/router.js';

const h = () => undefined;

describe('Router', () => {
  const r = new Router().add(
    { method: 'GET', path: '/v1/services/:id', handler: h },
    { method: 'PUT', path: '/v1/services/:id', handler: h },
    { method: 'GET', path: '/v1/kv/*key', handler: h },
    { method: 'GET', path: '/v1/images/*name/:tag/content', handler: h },
    { method: 'GET', path: '/v1/images/*name/:tag', handler: h },
  );

  it('matches params, decoding each segment', () => {
    expect(r.match('GET', '/v1/services/web%201')).toMatchObject({ params: { id: 'web 1' } });
    expect(r.match('DELETE', '/v1/services/x')).toEqual({ allowed: ['GET', 'PUT'] });
    expect(r.match('GET', '/v1/nothing')).toBeUndefined();
    // the route is there but the param does not decode: a 400, not a 404
    expect(r.match('GET', '/v1/services/%E0%A4%A')).toEqual({ badEncoding: true });
    expect(r.match('GET', '/v1/kv/a/%FF')).toEqual({ badEncoding: true });
    expect(r.match('GET', '/v1/kv/%ED%A0%80')).toEqual({ badEncoding: true });
    expect(r.match('DELETE', '/v1/services/%ZZ')).toEqual({ allowed: ['GET', 'PUT'] });
  });

  it('a wildcard takes the middle segments', () => {
    expect(r.match('GET', '/v1/kv/a/b/c')).toMatchObject({ params: { key: 'a/b/c' } });
    expect(r.match('GET', '/v1/kv/a%2Fb')).toMatchObject({ params: { key: 'a/b' } });
    expect(r.match('GET', '/v1/kv')).toBeUndefined();
    expect(r.match('GET', '/v1/images/library/ubuntu/22.04')).toMatchObject({
      params: { name: 'library/ubuntu', tag: '22.04' },
    });
    expect(r.match('GET', '/v1/images/library/ubuntu/22.04/content')).toMatchObject({
      route: { path: '/v1/images/*name/:tag/content' },
      params: { name: 'library/ubuntu', tag: '22.04' },
    });
  });

  it('routes the path as sent: empty segments are kept, and an empty param matches nothing', () => {
    // `dir/` was the key "dir" while `dir%2F` was "dir/"; `a//b` was "a/b"
    expect(r.match('GET', '/v1/kv/dir/')).toMatchObject({ params: { key: 'dir/' } });
    expect(r.match('GET', '/v1/kv/a//b')).toMatchObject({ params: { key: 'a//b' } });
    // `/v1/services//x` was `/v1/services/x`; `PUT /v1/services/` was "not allowed, use GET"
    expect(r.match('GET', '/v1/services//x')).toBeUndefined();
    expect(r.match('PUT', '/v1/services/')).toBeUndefined();
    expect(r.match('GET', '/v1//services/x')).toBeUndefined();
  });
});
