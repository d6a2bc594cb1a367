@echo off
rem Installs Sala on Windows: needs only Node.js LTS (20 or newer) from https://nodejs.org
setlocal
cd /d "%~dp0"
node --version >nul 2>&1
if errorlevel 1 goto nonode
echo Installing Sala's packages and building it (npm ci)...
call npm ci
if errorlevel 1 goto failed
echo.
echo Sala is installed.
echo   Teacher's laptop:  run_server.bat        (Windows may ask to allow Node.js on private networks: allow it)
echo   Each student:      run_client.bat --user NAME
echo   Try it first:      npm run demo
exit /b 0

:nonode
echo Sala needs Node.js LTS (version 20 or newer). Install it from https://nodejs.org, then run install.bat again.
exit /b 1

:failed
echo npm ci failed; the messages above say why. Check the network connection and run install.bat again.
exit /b 1
