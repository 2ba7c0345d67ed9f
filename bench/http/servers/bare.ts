/** The ceiling: node:http with no session at all, answering the same routes with the same bodies. */
import { createServer } from 'node:http'
import { listen, ROUTES } from './common.js'

let counter = 0

const server = createServer((req, res) => {
  res.setHeader('content-type', 'text/plain')
  switch (req.url) {
    case ROUTES.read:
      res.end(String(counter))
      return
    case ROUTES.write:
      res.end(String(++counter))
      return
    case ROUTES.fresh:
      res.end('none')
      return
    default:
      res.statusCode = 404
      res.end()
  }
})

listen(server)
