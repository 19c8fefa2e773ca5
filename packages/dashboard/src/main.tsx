import { render } from 'preact'
import { App } from './views/app.js'
import './style.css'

render(<App />, document.getElementById('app')!)
