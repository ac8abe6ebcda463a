import json, time, statistics, urllib.request, urllib.error
B="http://127.0.0.1:18090/api/v1/auth"
def post(path, body):
    req=urllib.request.Request(B+path, data=json.dumps(body).encode(), headers={"content-type":"application/json"})
    t=time.perf_counter()
    try: urllib.request.urlopen(req).read(); code=200
    except urllib.error.HTTPError as e: e.read(); code=e.code
    return code, (time.perf_counter()-t)*1000
print(post("/register", {"username":"known.user","password":"the right password 1","full_name":"K","role":"patient"})[0])
cases={"wrong password":{"username":"known.user","password":"a wrong password 99"},
       "unknown username":{"username":"nobody.here","password":"a wrong password 99"},
       "right password":{"username":"known.user","password":"the right password 1"}}
res={k:[] for k in cases}
for i in range(60):
    for k,b in cases.items():
        c,ms=post("/login", b); res[k].append(ms)
for k,v in res.items():
    v.sort(); print(f"{k:18} n={len(v)} median={statistics.median(v):.1f} ms  p10={v[6]:.1f}  p90={v[54]:.1f}")
