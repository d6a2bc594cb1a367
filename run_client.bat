@echo off
rem Starts Sala for one user; arguments are passed to "sala".
rem Example: run_client.bat --user alice --server 192.168.1.10:7420 --server-key ABCD-EFGH-IJKL-MNOP
setlocal
node --version >nul 2>&1
if errorlevel 1 goto nonode
if not exist "%~dp0dist\peer\cli.js" goto notinstalled
node "%~dp0dist\peer\cli.js" %*
exit /b %errorlevel%

:notinstalled
echo Sala is not installed yet: run install.bat first.
exit /b 1

:nonode
echo Sala needs Node.js LTS (version 20 or newer). Install it from https://nodejs.org, then run install.bat.
exit /b 1
